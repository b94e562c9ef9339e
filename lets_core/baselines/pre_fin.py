"""Pre-Fin: every Des-Net trained from scratch on the stage-1 budget, then fine-tuned.

The expensive upper bound the paper compares with: stage 1 trains each requested size from timm's
random initialization (:func:`lets_core.train.scratch_des`) for ``train_cfg.epochs`` epochs with
the stage-1 teacher and loss, and keeps every trained model; a Des-Net is the trained model of
its size. Its storage is the sum of all of them (the paper's Table 2 argument).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from torch import nn
from timm.models.vision_transformer import VisionTransformer

from ..config import LetsConfig
from ..data import Splits
from ..des import build_des, des_param_count
from ..errors import DesSizeError
from ..input_norm import recorded_input_norm
from ..train.config import TrainConfig
from ..train.distributed import DistEnv, barrier
from ..train.loop import FitResult, fit
from ..train.stages import check_data_fits, scratch_des
from .source import Source, clone_state, detached, save_source
from .stage1 import SOURCE_DIR

NAME = "pre-fin"


def size_key(heads: int, depth: int) -> str:
    """The name prefix of one size's tensors in the source, and its folder under ``out_dir``."""
    return f"{heads}x{depth}"


def train_size(cfg: LetsConfig, splits: Splits, teacher: nn.Module | None, train_cfg: TrainConfig, heads: int,
               depth: int, out_dir: str | Path | None = None, resume: bool = False, *,
               env: DistEnv | None = None) -> FitResult:
    """Pre-train one (heads, depth) Des-Net from scratch like LeTs stage 1 (same teacher, loss,
    recipe and epochs); ``out_dir`` holds its checkpoint and log."""
    check_data_fits(cfg, splits)
    model = scratch_des(cfg, heads, depth, drop_path_rate=cfg.drop_path_rate, seed=train_cfg.seed)
    return fit(model, splits, train_cfg, kind=NAME, teacher=teacher, out_dir=out_dir, resume=resume, env=env,
               desc=f"{NAME} {size_key(heads, depth)}")


def check_size(cfg: LetsConfig, heads: int, depth: int) -> None:
    """The sizes LeTs emits (``scratch_des``'s range)."""
    des_param_count(cfg, heads, depth)


def train_stage1(splits: Splits, teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig,
                 out_dir: str | Path | None = None, resume: bool = False, *, env: DistEnv | None = None,
                 sizes: Sequence[tuple[int, int]] | None = None) -> Source:
    """Pre-train every size in ``sizes`` (required: Pre-Fin trains one model per size) under
    ``out_dir/HxL``; the source holds all of them."""
    if not sizes:
        raise DesSizeError("Pre-Fin trains one model per Des size: pass sizes=[(heads, depth), ...]")
    env = env or DistEnv()
    sizes = [(int(h), int(d)) for h, d in dict.fromkeys((h, d) for h, d in sizes)]
    for h, d in sizes:
        check_size(cfg, h, d)
    state, history, input_norm = {}, [], None
    for h, d in sizes:
        key = size_key(h, d)
        result = train_size(cfg, splits, teacher, train_cfg, h, d, None if out_dir is None else Path(out_dir) / key,
                            resume, env=env)
        state.update({f"{key}.{k}": v for k, v in detached(result.model.state_dict()).items()})
        history += [{"size": key, **r} for r in result.history]
        input_norm = recorded_input_norm(result.model)  # one per run: every size trains on the same splits
    source = Source(NAME, cfg, state, {"sizes": [list(s) for s in sizes]}, history, input_norm)
    if out_dir is not None and env.is_main:
        save_source(source, Path(out_dir) / SOURCE_DIR)
    barrier(env)
    return source


def emit(source: Source, heads: int, depth: int, *, drop_path_rate: float = 0.0) -> VisionTransformer:
    """The pre-trained model of (heads, depth)."""
    trained = [tuple(s) for s in source.settings.get("sizes", [])]
    if (heads, depth) not in trained:
        raise DesSizeError(f"Pre-Fin has no pre-trained {size_key(heads, depth)} model; its stage 1 trained "
                           f"{[size_key(*s) for s in trained]}; train that size with sizes=[...]")
    state = detached(source.state, size_key(heads, depth) + ".")
    return build_des(source.cfg, heads * source.cfg.learngene.head_dim, depth, clone_state(state), drop_path_rate,
                     source.input_norm)
