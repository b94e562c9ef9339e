"""Teachers for stage-1 distillation: any classifier, a small timm ResNet trained here, or a timm
architecture plus a local checkpoint file.

A teacher lets_core trains is cached as a folder (``model.safetensors`` + ``teacher.json``); a
later call with the same dataset, architecture and recipe reuses it instead of training again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..data import Splits, eval_loader
from .checkpoint import CheckpointError
from .config import RUNTIME_ONLY, TrainConfig
from .distributed import DistEnv, barrier
from .loop import evaluate, fit

# lets_core's own teacher: a 4-stage timm ResNet with one BasicBlock per stage and narrow channels,
# sized for small images (about 1.2 M parameters; ~91% on Fashion-MNIST after 3 epochs on a CPU).
SMALL_RESNET = "lets-resnet-small"
TEACHER_FILE, TEACHER_META = "model.safetensors", "teacher.json"


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
        return timm.create_model(arch, pretrained=False, img_size=img_size, **kwargs)
    except TypeError:  # CNNs take any input size and have no img_size argument
        return timm.create_model(arch, pretrained=False, **kwargs)


def load_teacher(path: str | Path, arch: str | None = None, *, num_classes: int | None = None,
                 in_chans: int | None = None, img_size: int | None = None) -> nn.Module:
    """Load a teacher in eval mode.

    ``path`` is either a folder written by :func:`train_teacher` (its ``teacher.json`` says how to
    rebuild it), or a checkpoint file (.safetensors or a torch state dict) of the timm
    architecture ``arch`` with the given ``num_classes`` / ``in_chans`` / ``img_size``.
    """
    path = Path(path)
    if path.is_dir():
        meta_path = path / TEACHER_META
        if not meta_path.is_file():
            raise CheckpointError(f"teacher folder {str(path)!r} has no {TEACHER_META}; pass the checkpoint "
                                  "file itself together with its timm architecture")
        meta = json.loads(meta_path.read_text())
        arch, num_classes, in_chans, img_size = meta["arch"], meta["num_classes"], meta["in_chans"], meta["img_size"]
        path = path / TEACHER_FILE
    if arch is None or num_classes is None or in_chans is None:
        raise ValueError("loading a teacher from a checkpoint file needs arch, num_classes and in_chans")
    if not path.is_file():
        raise CheckpointError(f"teacher checkpoint {str(path)!r} does not exist")
    model = build_teacher(arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size or 224)
    state = _read_state(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"teacher checkpoint {str(path)!r} does not fit architecture {arch!r} with "
                              f"num_classes={num_classes}, in_chans={in_chans}: {str(exc)[:400]}") from exc
    return model.eval()


def train_teacher(splits: Splits, cfg: TrainConfig, out_dir: str | Path, arch: str = SMALL_RESNET, *,
                  resume: bool = False, env: DistEnv | None = None) -> tuple[nn.Module, dict]:
    """Train (or reuse the cached) teacher for ``splits``; returns the model and its metadata.

    The cache key is the architecture, the dataset description and the recipe: change any of
    them and the teacher is trained again.
    """
    env = env or DistEnv()
    out = Path(out_dir)
    recipe = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_ONLY}
    key = {"arch": arch, "data": splits.describe(), "train_config": recipe}
    cached = _cached(out, key)
    if cached is not None:
        return load_teacher(out).to(env.device), cached
    torch.manual_seed(cfg.seed)
    model = build_teacher(arch, num_classes=splits.num_classes, in_chans=splits.in_chans, img_size=splits.image_size)
    result = fit(model, splits, cfg, kind="teacher", out_dir=out, resume=resume, env=env, desc="teacher")
    test = evaluate(result.model, eval_loader(splits, "test", cfg.eval_batch_size, rank=env.rank,
                                              world_size=env.world_size, num_workers=cfg.num_workers), env)
    meta = dict(key, num_classes=splits.num_classes, in_chans=splits.in_chans, img_size=splits.image_size,
                val_top1=result.last.get("val_top1"), test_top1=test["top1"],
                params=sum(p.numel() for p in model.parameters()))
    if env.is_main:
        state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
        tmp = out / (TEACHER_FILE + ".tmp")
        save_file(state, str(tmp))
        tmp.replace(out / TEACHER_FILE)
        # Written last: its presence is what marks the cache as complete.
        (out / (TEACHER_META + ".tmp")).write_text(json.dumps(meta, indent=2))
        (out / (TEACHER_META + ".tmp")).replace(out / TEACHER_META)
    barrier(env)
    return result.model.eval(), meta


def _cached(out: Path, key: dict) -> dict | None:
    meta_path = out / TEACHER_META
    if not (meta_path.is_file() and (out / TEACHER_FILE).is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    return meta if all(meta.get(k) == v for k, v in key.items()) else None


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors and torch raise several unrelated types for a bad file
        raise CheckpointError(f"teacher checkpoint {str(path)!r} cannot be read ({exc})") from exc
    for wrapper in ("state_dict", "model", "model_ema"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"teacher checkpoint {str(path)!r} holds no state dict")
    # Checkpoints saved from a DDP-wrapped model prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}
