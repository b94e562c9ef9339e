"""``lets train-teacher``: train (or reuse the cached) teacher classifier for stage-1 distillation."""

from __future__ import annotations

import argparse

from ...train import distributed_session, train_teacher
from .. import inputs
from ..flags import data_flags, subparser, train_flags


def build(sub) -> argparse.ArgumentParser:
    p = subparser(sub, "train-teacher", "train (or reuse the cached) teacher classifier for stage-1 distillation")
    p.add_argument("--arch", default="lets-resnet-small", help="lets-resnet-small or any timm model name")
    p.add_argument("--out", default="runs/teacher", help="output folder (model.safetensors, teacher.json, log)")
    data_flags(p)
    train_flags(p, lr=4e-3)
    return p


def run(args: argparse.Namespace) -> int:
    with distributed_session(args.device) as env:
        splits = inputs.splits(args)
        _, meta = train_teacher(splits, inputs.recipe(args), args.out, args.arch, resume=args.resume, env=env)
        if env.is_main:
            print(f"teacher {args.arch}: test top-1 {meta['test_top1']:.4f}; saved in {args.out}")
    return 0
