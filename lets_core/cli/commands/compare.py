"""``lets compare``: LeTs against the paper's baselines with one teacher, stage-1 recipe and budget, and
tuning recipe; top-1 by tuning epochs per size."""

from __future__ import annotations

import argparse

from ...compare import CompareConfig, run_compare
from ...train import distributed_session
from .. import inputs
from ..choices import COMPARE_DATASETS, COMPARE_METHODS
from ..flags import experiment_flags, subparser
from ..types import count_list, finite_float, lr_list, name_list, positive_int, size_list, val_size

method_list = name_list(COMPARE_METHODS)  # the type of --methods


def build(sub) -> argparse.ArgumentParser:
    c = CompareConfig()
    p = subparser(sub, "compare", "LeTs against weight selection (imwlm), TLEG, SWS, a nested ViT, Pre-Fin and "
                  "scratch: one teacher, stage-1 recipe and budget, tuning recipe; top-1 by tuning epochs per size")
    p.add_argument("--out", help="output folder, also the cache of finished runs (default runs/compare or "
                   "runs/compare-quick)")
    p.add_argument("--quick", action="store_true", help="smoke run of every method on a data subset")
    p.add_argument("--methods", type=method_list, help=f"comma-separated among {','.join(COMPARE_METHODS)} "
                   "(default: all)")
    p.add_argument("--sizes", type=size_list, help="Des-Nets as HEADSxDEPTH list (default 2x4,3x6,4x8)")
    p.add_argument("--tune-epochs", type=count_list, help="comma-separated tuning lengths, 0 = direct "
                   "(default 0,1,2,4)")
    p.add_argument("--dataset", choices=COMPARE_DATASETS, default=c.dataset,
                   help="auto: Fashion-MNIST if installed, else digits; folder: --data-dir with a subfolder per class")
    p.add_argument("--data-dir", help="Fashion-MNIST folder or the image folder")
    p.add_argument("--stage1-epochs", type=positive_int)
    p.add_argument("--stage1-lr", type=finite_float, default=c.stage1_lr)
    p.add_argument("--tune-lr", type=lr_list, help="tuning lr per 512 images, or a comma-separated grid: each "
                   "method, size and length is then tuned at every lr and keeps the one with the best validation "
                   f"top-1 (default {','.join(f'{lr:g}' for lr in c.tune_lrs)})")
    p.add_argument("--val-size", type=val_size, help="validation images held out of the training data: a fraction "
                   "below 1 or a count (default: 2000 on Fashion-MNIST, 10%% of the training images otherwise)")
    p.add_argument("--train-limit", type=positive_int, help=f"training images (default {c.train_limit})")
    p.add_argument("--learngene-width", type=positive_int, help="the learngene's width, a multiple of the head "
                   "width 16 up to the Aux-Net's 64 (default 32); Des-Nets narrower than it cannot be made")
    experiment_flags(p, c)
    return p


def run(args: argparse.Namespace) -> int:
    overrides = inputs.experiment_overrides(
        args, ("out", "dataset", "data_dir", "seed", "teacher_epochs", "stage1_epochs", "stage1_lr",
               "alpha", "tau", "strategy", "batch_size", "val_size", "train_limit", "test_limit", "progress",
               "learngene_width"),
        {"methods": method_list, "sizes": size_list, "tune_epochs": count_list, "tune_lr": lr_list})
    if "tune_lr" in overrides:  # one flag for one lr or a grid; the configuration holds the grid
        overrides["tune_lrs"] = overrides.pop("tune_lr")
    with distributed_session(args.device) as env:
        run_compare(CompareConfig.for_mode(args.quick, **overrides), env)
    return 0
