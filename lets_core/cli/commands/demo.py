"""``lets demo``: the whole pipeline on Fashion-MNIST, LeTs Des-Nets (paper and elastic stage 1) after 0
and 1 epoch against scratch after 1, 2, 4."""

from __future__ import annotations

import argparse

from ...demo import ELASTIC_FIELDS, DemoConfig, run_demo
from ...train import distributed_session
from .. import inputs
from ..choices import DEMO_DATASETS, ELASTIC_TARGETS, F_INITS, G_INITS, STAGE1_VARIANTS
from ..flags import experiment_flags, subparser
from ..types import count, finite_float, int_list, name_list, positive_int, size_list

stage1_list = name_list(STAGE1_VARIANTS)  # the type of --stage1


def build(sub) -> argparse.ArgumentParser:
    d = DemoConfig()
    p = subparser(sub, "demo", "the whole pipeline on Fashion-MNIST: LeTs Des-Nets (paper and elastic stage 1) "
                  "after 0 and 1 epoch vs scratch after 1, 2, 4")
    p.add_argument("--out", help="output folder (default runs/demo, runs/demo-quick or runs/demo-full)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run on a data subset (< 3 minutes on 2 cores)")
    mode.add_argument("--full", action="store_true", help="all training images, a 12-epoch elastic stage 1, "
                      "scratch for 1 and 4 epochs (one third of stage 1)")
    p.add_argument("--dataset", choices=DEMO_DATASETS, default=d.dataset,
                   help="auto: Fashion-MNIST if installed, else digits")
    p.add_argument("--data-dir", help="Fashion-MNIST folder")
    p.add_argument("--sizes", type=size_list, help="Des-Nets as HEADSxDEPTH list, e.g. 2x4,3x6,4x8 (default: mode's)")
    p.add_argument("--stage1", type=stage1_list,
                   help=f"comma-separated stage-1 variants among {','.join(STAGE1_VARIANTS)} "
                   "(default: both)")
    p.add_argument("--aux-epochs", type=positive_int)
    p.add_argument("--scratch-epochs", type=int_list,
                   help="comma-separated scratch budgets, e.g. 1,2,4 (default: mode's)")
    p.add_argument("--aux-lr", type=finite_float, default=d.aux_lr)
    p.add_argument("--f-init", choices=F_INITS, default=d.f_init)
    p.add_argument("--g-init", choices=G_INITS, default=d.g_init)
    p.add_argument("--f-lr-scale", type=finite_float, default=d.f_lr_scale)
    p.add_argument("--g-lr-scale", type=finite_float, default=d.g_lr_scale)
    # Default None: a flag given is told from one left alone, so that it is refused where no
    # elastic variant runs (the demo's values are DemoConfig's).
    p.add_argument("--elastic-random", type=count, help=f"random Des sizes per step (default {d.elastic_random})")
    p.add_argument("--elastic-target", choices=ELASTIC_TARGETS, help=f"default {d.elastic_target}")
    p.add_argument("--elastic-weight", type=finite_float, help=f"> 0 (default {d.elastic_weight:g})")
    p.add_argument("--des-lr", type=finite_float, default=d.des_lr,
                   help="shared by LeTs fine-tuning and scratch training")
    p.add_argument("--train-limit", type=positive_int,
                   help=f"training images (default {d.train_limit}, a seeded subset; 58000 = all)")
    experiment_flags(p, d)
    return p


def run(args: argparse.Namespace) -> int:
    overrides = inputs.experiment_overrides(
        args, ("out", "dataset", "data_dir", "seed", "strategy", "teacher_epochs", "aux_epochs", "alpha", "tau",
               "aux_lr", "f_init", "g_init", "f_lr_scale", "g_lr_scale", "elastic_random", "elastic_target",
               "elastic_weight", "des_lr", "batch_size", "train_limit", "test_limit", "progress"),
        {"stage1": stage1_list, "sizes": size_list, "scratch_epochs": int_list})
    elastic_flags = [f"--{name.replace('_', '-')}" for name in ELASTIC_FIELDS if overrides[name] is not None]
    if elastic_flags:
        variants = overrides.get("stage1") or DemoConfig.for_mode(args.quick, args.full).stage1
        if "elastic" not in variants:
            verb = "applies" if len(elastic_flags) == 1 else "apply"
            raise ValueError(f"{', '.join(elastic_flags)} {verb} only to the elastic stage 1, which --stage1 "
                             f"{','.join(variants)} does not run; add elastic to --stage1, or drop them")
    with distributed_session(args.device) as env:
        run_demo(DemoConfig.for_mode(args.quick, args.full, **overrides), env)
    return 0
