"""``lets emit``: stage 2, build a Des-Net from a bundle and save it as a plain timm model."""

from __future__ import annotations

import argparse

from ...bundle import load_bundle
from ...des import emit_des, save_des
from .. import inputs
from ..flags import des_flags, subparser
from ..types import rate


def build(sub) -> argparse.ArgumentParser:
    p = subparser(sub, "emit", "stage 2: build a Des-Net from a bundle and save it as a plain timm model")
    p.add_argument("--bundle", required=True, help="bundle folder (OUT/bundle of train-aux)")
    p.add_argument("--out", required=True, help="Des-Net folder to write (model.safetensors + config.json)")
    p.add_argument("--drop-path", type=rate, default=0.0, help="stochastic depth rate for its fine-tuning")
    des_flags(p, required=True)
    return p


def run(args: argparse.Namespace) -> int:
    aux = load_bundle(args.bundle)
    strategy = inputs.emit_strategy(args, args.bundle)
    des = emit_des(aux, args.heads, args.depth, strategy=strategy, plan=inputs.plan(args.plan),
                   drop_path_rate=args.drop_path)
    save_des(des, args.out)
    params = sum(p.numel() for p in des.parameters())
    print(f"Des-H{args.heads}-L{len(des.blocks)} ({params:,} parameters, strategy {strategy}) saved in {args.out}")
    return 0
