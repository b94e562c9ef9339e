"""The two LeTs stages as functions: train the Aux-Net by distillation, then build, fine-tune and
evaluate Des-Nets, and train the same architectures from scratch as the baseline.

Everything the ``lets`` command line does goes through these functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..auxnet import AuxNet
from ..bundle import save_bundle
from ..config import LetsConfig
from ..data import DatasetError, Splits, eval_loader
# load_des and scratch_des live with the rest of Des-Net building; re-exported here because
# lets_core.train is where training code has always imported them from.
from ..des import MODEL_ARGS_ATTR, load_des, save_des, scratch_des  # noqa: F401
from ..elastic import ElasticConfig, ElasticObjective
from ..input_norm import normalized_for
from .config import TrainConfig
from .distributed import DistEnv, barrier
from .loop import FitResult, evaluate, fit

BUNDLE_DIR = "bundle"


def check_data_fits(cfg: LetsConfig, splits: Splits) -> None:
    """Raise if the dataset's images or classes do not match what the configuration builds."""
    lg = cfg.learngene
    have = (splits.image_size, splits.in_chans, splits.num_classes)
    want = (lg.img_size, lg.in_chans, lg.num_classes)
    if have != want:
        raise ValueError(f"the data gives (image size, channels, classes) = {have} but the model configuration "
                         f"expects {want}; resize the data (image_size / channels) or change the configuration")


def train_aux(cfg: LetsConfig, splits: Splits, train_cfg: TrainConfig, out_dir: str | Path, *,
              teacher: nn.Module | None = None, resume: bool = False, env: DistEnv | None = None,
              elastic: ElasticConfig | None = None) -> FitResult:
    """Stage 1: train an Aux-Net (learngene + F + G + pos_embed) and save its bundle under ``out_dir/bundle``.

    The loss is (1 − α)·CE + α·KD from ``teacher`` (``train_cfg.alpha``; 1 is the paper's setting).
    ``elastic`` (beyond the paper, see :mod:`lets_core.elastic`) also trains sampled Des-Nets at
    every step; its settings go into the checkpoint (a resume with other settings is refused) and
    into the bundle's ``bundle.json`` under ``training``. None is the paper's stage 1.
    """
    env = env or DistEnv()
    check_data_fits(cfg, splits)
    # Built first so that sizes the configuration cannot emit fail before any training.
    objective = ElasticObjective(elastic, cfg, train_cfg) if elastic is not None else None
    torch.manual_seed(train_cfg.seed)
    aux = AuxNet(cfg)
    # The "ligo" layout can have the very tensor shapes of a "lets" one while meaning another
    # network, so the load's shape check cannot refuse a resume across layouts; the kind does.
    kind = "aux" if cfg.transform.layout == "lets" else f"aux-{cfg.transform.layout}"
    result = fit(aux, splits, train_cfg, kind=kind, teacher=teacher, out_dir=out_dir, resume=resume, env=env,
                 desc="aux-net", objective=objective, origin=aux_origin(cfg))
    result.model.trained_strategy = elastic.strategy if elastic is not None else None
    if env.is_main:
        training = {"elastic": elastic.to_dict()} if elastic is not None else None
        save_bundle(result.model, Path(out_dir) / BUNDLE_DIR, training=training)
    barrier(env)
    return result


def aux_origin(cfg: LetsConfig) -> dict[str, Any]:
    """What a stage-1 run starts from, for its checkpoint: the Aux-Net's configuration (built from
    it under the recipe's seed), so that a resume with another one (a drop-path rate, an init
    scheme) is refused even where every tensor shape is the same."""
    return _flat(cfg.to_dict())


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested configuration as one level of dotted keys (a resume's refusal then names the field)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def finetune(model: nn.Module, splits: Splits, train_cfg: TrainConfig, out_dir: str | Path | None = None, *,
             resume: bool = False, env: DistEnv | None = None, desc: str = "des",
             origin: dict[str, Any] | None = None) -> FitResult:
    """Stage 2: fine-tune a Des-Net (emitted or scratch) on labels; saves it with save_des under out_dir/model.

    ``origin`` describes the starting model (:func:`lets_core.train.fit`): a resume from another one
    is refused."""
    env = env or DistEnv()
    result = fit(model, splits, train_cfg, kind="des", out_dir=out_dir, resume=resume, env=env, desc=desc,
                 origin=origin)
    if out_dir is not None and env.is_main and hasattr(result.model, MODEL_ARGS_ATTR):
        save_des(result.model, Path(out_dir) / "model")
    barrier(env)
    return result


def evaluate_split(model: nn.Module, splits: Splits, split: str = "test", *, batch_size: int = 256,
                   env: DistEnv | None = None, num_workers: int | None = None) -> dict:
    """Top-1 and loss of ``model`` on ``split`` (no training); a split without images is refused
    (its metrics would be made up). The inputs are normalized as ``model`` records
    (:mod:`lets_core.input_norm`), else with ``splits``' training statistics."""
    env = env or DistEnv()
    images = getattr(splits, split, None)
    if images is None or not hasattr(images, "__len__"):
        raise ValueError(f"split must be one of 'train', 'val', 'test', got {split!r}")
    if len(images) == 0:
        hint = " (the validation split is --val-size of the training images)" if split == "val" else ""
        raise DatasetError(f"the {split!r} split of {splits.name} has no images, so there is nothing to "
                           f"evaluate{hint}")
    model = model.to(env.device)
    splits = normalized_for(model, splits)
    loader = eval_loader(splits, split, batch_size, rank=env.rank, world_size=env.world_size, num_workers=num_workers)
    return evaluate(model, loader, env)


def parse_sizes(text: str | Sequence[str]) -> list[tuple[int, int]]:
    """"2x4,4x8" (heads x depth) -> [(2, 4), (4, 8)]."""
    items = text.split(",") if isinstance(text, str) else list(text)
    sizes = []
    for item in items:
        parts = item.lower().replace("h", "").replace("l", "").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"Des size {item!r} must look like HEADSxDEPTH, e.g. 3x6")
        sizes.append((int(parts[0]), int(parts[1])))
    return sizes

