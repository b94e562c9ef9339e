"""Training for LeTs: teachers, stage 1 (Aux-Net by distillation), stage 2 (Des-Net fine-tuning),
the scratch baseline, checkpoints with exact resume, and DDP under torchrun.

A full run (minutes on a CPU, so written as a script rather than a doctest; the demo,
``lets_core/demo.py``, runs the same steps)::

    from lets_core import presets
    from lets_core.data import load_splits
    from lets_core.train import TrainConfig, train_teacher, train_aux

    splits = load_splits("fashion-mnist")
    teacher, _ = train_teacher(splits, TrainConfig(epochs=3, lr=2e-3), "runs/teacher")
    result = train_aux(presets.tiny(), splits, TrainConfig(epochs=5, alpha=1.0), "runs/aux", teacher=teacher)"""

from .checkpoint import CHECKPOINT_FILE, CheckpointError, load_checkpoint, save_checkpoint
from .config import AMP_MODES, TrainConfig
from .distributed import DistEnv, distributed_session, init_distributed, shutdown
from .losses import DistillationLoss, kd_loss
from .loop import LOG_FILE, FitResult, evaluate, fit, history_seconds
from .objectives import DistillationObjective, Objective
from .optim import build_optimizer, param_groups, scaled_lr, warmup_cosine
from .stages import (BUNDLE_DIR, check_data_fits, evaluate_split, finetune, load_des, parse_sizes, scratch_des,
                     train_aux)
from .teacher import SMALL_RESNET, build_teacher, load_teacher, train_teacher
from ..elastic import ElasticConfig, ElasticObjective

__all__ = [
    "AMP_MODES", "BUNDLE_DIR", "CHECKPOINT_FILE", "CheckpointError", "DistEnv", "DistillationLoss",
    "DistillationObjective", "ElasticConfig", "ElasticObjective", "FitResult", "Objective",
    "LOG_FILE", "SMALL_RESNET", "TrainConfig", "build_optimizer", "build_teacher", "check_data_fits",
    "distributed_session", "evaluate", "evaluate_split", "finetune", "fit", "history_seconds", "init_distributed", "kd_loss",
    "load_checkpoint", "load_des", "load_teacher", "param_groups", "parse_sizes", "save_checkpoint", "scaled_lr", "scratch_des",
    "shutdown", "train_aux", "train_teacher", "warmup_cosine",
]
