"""From parsed flags to the library's inputs: the training recipe, the data splits, the model
configuration, a depth plan, list values, and what a teacher folder records. A bad value is a
ValueError naming the flag, which ``lets`` prints as one line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable

from ..bundle import bundle_strategy
from ..config import LetsConfig
from ..data import load_splits
from ..train import TrainConfig
from ..train.teacher import TEACHER_META
from .choices import DEFAULT_PRESET, PRESETS
from .types import index_list


def recipe(args: argparse.Namespace) -> TrainConfig:
    names = [f for f in TrainConfig.__dataclass_fields__ if hasattr(args, f)]
    return TrainConfig(**{f: getattr(args, f) for f in names})


def splits(args: argparse.Namespace, image_size: int | None = None, channels: int | None = None):
    return load_splits(args.dataset, args.data_dir, image_size=image_size or args.image_size,
                       channels=channels or args.channels, val_size=_val_size(args.val_size),
                       train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed)


def _val_size(value: float) -> float | int:
    # One flag for both forms: a fraction below 1, a count from 1 up.
    return int(value) if value >= 1 and float(value).is_integer() else value


def model_config(args: argparse.Namespace, num_classes: int | None) -> LetsConfig:
    if args.model_config:
        if args.preset is not None:
            raise ValueError(f"--preset {args.preset} and --model-config both describe the model; give one")
        path = Path(args.model_config)
        if not path.is_file():
            raise ValueError(f"--model-config {str(path)!r} does not exist")
        cfg = LetsConfig.from_json(path.read_text())
    else:
        cfg = PRESETS[args.preset or DEFAULT_PRESET](**({"num_classes": num_classes} if num_classes else {}))
    if args.drop_path is not None:  # given: it wins over the configuration's, 0 included
        cfg = dataclasses.replace(cfg, drop_path_rate=args.drop_path)
    return cfg


def given_flags(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The flags among ``names`` (Namespace fields whose default is None) that were given."""
    return ["--" + name.replace("_", "-") for name in names if getattr(args, name) is not None]


def emit_strategy(args: argparse.Namespace, bundle: str) -> str:
    """--strategy, or the one the bundle's elastic stage 1 trained its Des-Nets with (emitting with
    another keeps neurons those Des-Nets never trained as a set: said on stderr, not refused)."""
    trained = bundle_strategy(bundle)
    if args.strategy is None:
        return trained or "continuous"
    if trained is not None and args.strategy != trained:
        print(f"note: {bundle!r} was trained elastically with strategy {trained!r}; emitting with "
              f"--strategy {args.strategy!r} keeps other neurons", file=sys.stderr)
    return args.strategy


def plan(text: str | list[int] | None) -> list[int] | None:
    return list_flag(text, index_list, "--plan") if text else None


def list_flag(value, parse, flag: str) -> list:
    """A comma-list flag's value: parsed and checked by its type (cli.types) already, or still text
    where the Namespace was built in Python."""
    if not isinstance(value, str):
        return list(value)
    try:
        return parse(value)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{flag} {exc}") from exc


def experiment_overrides(args: argparse.Namespace, fields: tuple[str, ...],
                         list_fields: dict[str, Callable[[str], list]]) -> dict[str, Any]:
    """The fields of an experiment command's configuration (``DemoConfig``, ``CompareConfig``) that
    its flags give, for the configuration's ``for_mode``: each of ``fields`` as parsed (a None is the mode's default),
    and each comma-list flag of ``list_fields`` (field: the flag's type) parsed where it was given."""
    overrides = {name: getattr(args, name) for name in fields}
    for name, parse in list_fields.items():
        value = getattr(args, name)
        if value:
            overrides[name] = list_flag(value, parse, "--" + name.replace("_", "-"))
    return overrides


def given(value, default):
    # Not `value or default`: a flag set to 0 must reach the check that refuses it, not vanish.
    return default if value is None else value


def teacher_meta(args: argparse.Namespace) -> dict | None:
    """What --teacher's folder records (teacher.json), or None for a checkpoint file with --teacher-arch.

    Checked here, before any data is loaded, so that a wrong path says so rather than failing
    later on what a checkpoint file would need.
    """
    path = Path(args.teacher)
    if not path.exists():
        raise ValueError(f"--teacher {args.teacher!r} does not exist; pass a folder written by `lets train-teacher` "
                         "or a checkpoint file with --teacher-arch")
    if path.is_file():
        if not args.teacher_arch:
            raise ValueError(f"--teacher {args.teacher!r} is a checkpoint file: pass its timm architecture with "
                             "--teacher-arch (a folder from `lets train-teacher` records it)")
        return None
    meta_path = path / TEACHER_META
    if not meta_path.is_file():
        raise ValueError(f"--teacher folder {args.teacher!r} has no {TEACHER_META}; pass a folder written by "
                         "`lets train-teacher`, or a checkpoint file with --teacher-arch")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(meta_path)!r} is not valid JSON ({exc}); train the teacher again") from exc
    needed = ("arch", "num_classes", "in_chans", "img_size")
    missing = [k for k in needed if k not in meta] if isinstance(meta, dict) else list(needed)
    if missing:
        raise ValueError(f"{str(meta_path)!r} lacks {missing}; a teacher.json holds {list(needed)}; "
                         "train the teacher again")
    if args.teacher_arch and args.teacher_arch != meta["arch"]:
        raise ValueError(f"--teacher-arch {args.teacher_arch!r} contradicts the teacher folder's architecture "
                         f"{meta['arch']!r}; --teacher-arch is for a checkpoint file, leave it out for a folder")
    return meta
