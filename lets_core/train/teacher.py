"""Teachers for stage-1 distillation: any classifier, a small timm ResNet trained here, or a timm
architecture plus a local checkpoint file.

A teacher lets_core trains is cached as a folder (``model.safetensors`` + ``teacher.json``, whose
digest covers the weights and every field); a later call with the same data, architecture and
recipe reuses it instead of training again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..artifacts import (digest_record, fsync_dir, fsync_file, publish_mode, read_json_object, verify_digest,
                         write_json)
from ..data import Splits, eval_loader
from ..input_norm import InputNorm, normalized_for, record_input_norm, recorded_input_norm
from ..state_files import read_state_dict
from .checkpoint import CheckpointError
from .config import RUNTIME_ONLY, TrainConfig
from .data_record import data_record
from .distributed import DistEnv, barrier
from .loop import evaluate, fit, history_seconds

# lets_core's own teacher: a 4-stage timm ResNet with one BasicBlock per stage and narrow channels,
# sized for small images (about 1.2 M parameters; ~91% on Fashion-MNIST after 3 epochs on a CPU).
SMALL_RESNET = "lets-resnet-small"
TEACHER_FILE, TEACHER_META = "model.safetensors", "teacher.json"
# What teacher.json must name to rebuild the teacher (img_size: ViT teachers need it).
_REBUILD_KEYS = ("arch", "num_classes", "in_chans", "img_size")


def build_teacher(arch: str = SMALL_RESNET, *, num_classes: int, in_chans: int, img_size: int) -> nn.Module:
    """A randomly initialized teacher: ``lets-resnet-small`` or any timm model name (offline)."""
    import timm

    if arch == SMALL_RESNET:
        from timm.models.resnet import BasicBlock, ResNet

        return ResNet(BasicBlock, (1, 1, 1, 1), num_classes=num_classes, in_chans=in_chans,
                      channels=(32, 64, 128, 256), stem_width=32)
    if not timm.is_model(arch):
        raise ValueError(f"unknown teacher architecture {arch!r}; use {SMALL_RESNET!r} or a timm model name "
                         f"such as 'resnet18' (see timm.list_models())")
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans}
    try:
        try:
            model = timm.create_model(arch, pretrained=False, img_size=img_size, **kwargs)
        except TypeError:  # CNNs take any input size and have no img_size argument
            model = timm.create_model(arch, pretrained=False, **kwargs)
    except RuntimeError as exc:  # e.g. a pretrained tag timm.is_model let through
        raise ValueError(f"timm cannot build teacher architecture {arch!r}: {exc}") from None
    _check_takes_images(model, arch, in_chans, img_size)
    return model


def _check_takes_images(model: nn.Module, arch: str, in_chans: int, img_size: int) -> None:
    """Refuse an architecture that cannot see the whole image: a ViT whose patch size does not
    divide the image size silently drops the last rows and columns (vit_tiny_patch16_224 at 28 px
    saw one 16 px patch, 33% of the pixels), and a deep CNN can fail only at the first step."""
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    if patch is not None:
        sizes = patch if isinstance(patch, (tuple, list)) else (patch, patch)
        if any(img_size % p for p in sizes):
            raise ValueError(f"teacher architecture {arch!r} has {tuple(sizes)} px patches, which do not divide the "
                             f"{img_size} px images (the remainder would be ignored); choose --image-size as a "
                             f"multiple of the patch size")
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_chans, img_size, img_size))
    except RuntimeError as exc:
        raise ValueError(f"teacher architecture {arch!r} cannot take {img_size} px images ({str(exc)[:200]}); "
                         f"choose another architecture or a larger --image-size") from None
    model.train()


def load_teacher(path: str | Path, arch: str | None = None, *, num_classes: int | None = None,
                 in_chans: int | None = None, img_size: int | None = None) -> nn.Module:
    """Load a teacher in eval mode.

    ``path`` is either a folder written by :func:`train_teacher` (its ``teacher.json`` says how to
    rebuild it and holds the SHA-256 of its weights and fields, checked here), or a checkpoint
    file (.safetensors or a torch state dict) of the timm architecture ``arch`` with the given
    ``num_classes`` / ``in_chans`` / ``img_size``. A folder's teacher records the input
    normalization it was trained with (:mod:`lets_core.input_norm`); a checkpoint file's records none.
    """
    path = Path(path)
    input_norm = None
    if not path.exists():
        raise CheckpointError(f"teacher {str(path)!r} does not exist; pass a folder written by train_teacher "
                              "(`lets train-teacher`) or a checkpoint file together with its timm architecture")
    if path.is_dir():
        meta = _read_meta(path)
        _verify(path, meta)
        arch, num_classes, in_chans, img_size = (meta[k] for k in _REBUILD_KEYS)
        input_norm = _input_norm(meta, path / TEACHER_META)
        path = path / TEACHER_FILE
    if arch is None or num_classes is None or in_chans is None:
        raise ValueError(f"loading a teacher from the checkpoint file {str(path)!r} needs arch, num_classes and "
                         "in_chans")
    model = build_teacher(arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size or 224)
    state = read_state_dict(path, "teacher checkpoint", CheckpointError)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"teacher checkpoint {str(path)!r} does not fit architecture {arch!r} with "
                              f"num_classes={num_classes}, in_chans={in_chans}: {str(exc)[:400]}") from exc
    return record_input_norm(model, input_norm).eval()


def _input_norm(meta: dict[str, Any], meta_path: Path) -> InputNorm | None:
    """The normalization a teacher.json records: its ``input_norm``, or in a folder written before
    that field the mean and std of the ``data`` it describes (the same values: the statistics of
    the training split it was trained on)."""
    value = meta.get("input_norm")
    if value is None and isinstance(meta.get("data"), dict) and {"mean", "std"} <= set(meta["data"]):
        value = meta["data"]
    if value is None:
        return None
    return InputNorm.from_dict(value, repr(str(meta_path)), CheckpointError)


def train_teacher(splits: Splits, cfg: TrainConfig, out_dir: str | Path, arch: str = SMALL_RESNET, *,
                  resume: bool = False, env: DistEnv | None = None) -> tuple[nn.Module, dict]:
    """Train (or reuse the cached) teacher for ``splits``; returns the model and its metadata.

    The cache key is the architecture, the training and validation data (their record: dataset,
    classes, shape, counts and SHA-256) and the recipe: change any of them and the teacher is
    trained again. A cached folder counts only when its weights match the digest in
    ``teacher.json``. The test split is not in the key (it never touches training): a reused
    teacher is evaluated on this call's test split, and its returned ``test_top1`` and ``data`` are
    this call's. Nor are the float statistics of the images, whose last digits change with the
    thread count (a torchrun process has one thread): the teacher records its own normalization.
    ``out_dir`` also holds fit's ``checkpoint.pt``; ``resume`` continues it (fit refuses a
    checkpoint of other data or another recipe).
    """
    env = env or DistEnv()
    out = Path(out_dir)
    recipe = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_ONLY}
    record = data_record(splits)  # hashes the images: once, for the cache key and fit's checkpoint
    key = {"arch": arch, "data_record": record, "train_config": recipe}
    cached = _cached(out, key)
    if cached is not None:
        model = load_teacher(out).to(env.device)
        return model, dict(cached, data=splits.describe(), test_top1=_test_top1(model, splits, cfg, env))
    torch.manual_seed(cfg.seed)
    model = build_teacher(arch, num_classes=splits.num_classes, in_chans=splits.in_chans, img_size=splits.image_size)
    result = fit(model, splits, cfg, kind="teacher", out_dir=out, resume=resume, env=env, desc="teacher",
                 data_record=record, origin={"arch": arch})
    # The key written is this call's: the weights come from this fit, which trained on these data
    # with this recipe or resumed a checkpoint it checked against them.
    meta = dict(key, data=splits.describe(), num_classes=splits.num_classes, in_chans=splits.in_chans,
                img_size=splits.image_size, val_top1=result.last.get("val_top1"),
                test_top1=_test_top1(result.model, splits, cfg, env),
                params=sum(p.numel() for p in model.parameters()),
                input_norm=recorded_input_norm(result.model).to_dict(),
                # What the training cost, so a run that reuses this teacher can report it.
                train_seconds=round(history_seconds(result.history) or 0.0, 3))
    if env.is_main:
        _save_teacher(out, result.model, meta)
    barrier(env)
    return result.model.eval(), meta


def _test_top1(model: nn.Module, splits: Splits, cfg: TrainConfig, env: DistEnv) -> float:
    loader = eval_loader(normalized_for(model, splits), "test", cfg.eval_batch_size, rank=env.rank,
                         world_size=env.world_size, num_workers=cfg.num_workers)
    return evaluate(model, loader, env)["top1"]


def _save_teacher(out: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Publish the weights, then ``teacher.json`` with their digest: the json is the commit marker.

    Not a folder swap: ``out`` also holds fit's checkpoint and log. A kill between the two renames
    leaves new weights under the old ``teacher.json``, whose digest then rejects them.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp_model, tmp_meta = out / (TEACHER_FILE + ".tmp"), out / (TEACHER_META + ".tmp")
    try:
        save_file(state, str(tmp_model))
        publish_mode(tmp_model)
        fsync_file(tmp_model)
        write_json(tmp_meta, dict(meta, digest=digest_record({TEACHER_FILE: tmp_model}, meta)))
        tmp_model.replace(out / TEACHER_FILE)
        tmp_meta.replace(out / TEACHER_META)
    except OSError as exc:
        raise CheckpointError(f"cannot save the teacher into {str(out)!r} ({exc.strerror or exc}); choose a "
                              "writable --out folder") from exc
    finally:
        for tmp in (tmp_model, tmp_meta):  # left only when a step failed
            tmp.unlink(missing_ok=True)
    fsync_dir(out)


def _cached(out: Path, key: dict) -> dict | None:
    """``out``'s metadata (without its digest) when it holds verified weights for ``key``; else None.

    Anything unreadable, damaged or half-written is a cache miss: the teacher is trained again.
    """
    if not ((out / TEACHER_META).is_file() and (out / TEACHER_FILE).is_file()):
        return None
    try:
        meta = _read_meta(out)
        if any(meta.get(k) != v for k, v in key.items()):
            return None
        _verify(out, meta)
    except CheckpointError:
        return None
    return meta


def _read_meta(folder: Path) -> dict[str, Any]:
    """``teacher.json`` of a teacher folder, checked to hold what rebuilding the teacher needs."""
    meta_path = folder / TEACHER_META
    if not meta_path.is_file():
        raise CheckpointError(f"teacher folder {str(folder)!r} has no {TEACHER_META}; pass the checkpoint "
                              "file itself together with its timm architecture")
    meta = read_json_object(meta_path, "it is an object written by train_teacher", CheckpointError)
    missing = [name for name in _REBUILD_KEYS if name not in meta]
    if missing:
        raise CheckpointError(f"{str(meta_path)!r} lacks {missing}; a teacher.json names "
                              f"{', '.join(_REBUILD_KEYS)} as written by train_teacher")
    return meta


def _verify(folder: Path, meta: dict[str, Any]) -> None:
    """Check the weights and every field of ``teacher.json`` against its digest (which is popped)."""
    record = meta.pop("digest", None)
    verify_digest(folder, record, meta, source=folder / TEACHER_META, required=[TEACHER_FILE],
                  error=CheckpointError)
