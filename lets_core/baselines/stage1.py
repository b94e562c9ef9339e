"""The stage-1 run every trained baseline shares: the LeTs recipe through :func:`lets_core.train.fit`,
then the trained tensors as a :class:`Source`, saved under ``out_dir/source``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from ..config import LetsConfig
from ..data import Splits
from ..input_norm import recorded_input_norm
from ..train.config import TrainConfig
from ..train.distributed import DistEnv, barrier
from ..train.loop import fit
from ..train.objectives import Objective
from ..train.stages import check_data_fits
from .source import Source, save_source

SOURCE_DIR = "source"


def run_stage1(method: str, model: nn.Module, export: Callable[[nn.Module], dict[str, Tensor]], splits: Splits,
               teacher: nn.Module | None, cfg: LetsConfig, train_cfg: TrainConfig, out_dir: str | Path | None,
               resume: bool, env: DistEnv | None, *, settings: dict[str, Any] | None = None,
               objective: Objective | None = None) -> Source:
    """Train ``model`` like LeTs stage 1 (same teacher, loss (1 − α)·CE + α·KD unless ``objective``
    says otherwise, recipe and epochs) and return ``export(trained model)`` as a :class:`Source`.

    ``out_dir`` holds fit's checkpoint and log (so ``resume`` continues an interrupted run, and a
    finished one returns at once) and the saved source in ``out_dir/source``.
    """
    env = env or DistEnv()
    check_data_fits(cfg, splits)
    result = fit(model, splits, train_cfg, kind=method, teacher=teacher, out_dir=out_dir, resume=resume, env=env,
                 desc=method, objective=objective)
    source = Source(method, cfg, export(result.model), dict(settings or {}), list(result.history),
                    recorded_input_norm(result.model))
    if out_dir is not None and env.is_main:
        save_source(source, Path(out_dir) / SOURCE_DIR)
    barrier(env)
    return source
