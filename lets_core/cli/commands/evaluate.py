"""``lets evaluate``: top-1 of a Des-Net, an Aux-Net bundle or a teacher on a data split."""

from __future__ import annotations

import argparse
import json
import sys

from ...bundle import load_bundle
from ...input_norm import InputNorm, recorded_input_norm
from ...train import distributed_session, evaluate_split, load_des, load_teacher
from .. import inputs
from ..choices import DEVICES, SPLITS
from ..fits import check_des_fits, check_fits
from ..flags import data_flags, subparser
from ..types import positive_int, seed


def build(sub) -> argparse.ArgumentParser:
    p = subparser(sub, "evaluate", "top-1 of a Des-Net, an Aux-Net bundle or a teacher on a data split")
    src = p.add_argument_group("model (one of)").add_mutually_exclusive_group(required=True)
    src.add_argument("--des", help="Des-Net folder")
    src.add_argument("--bundle", help="bundle folder (evaluates the Aux-Net)")
    src.add_argument("--teacher", help="teacher folder from train-teacher, or a checkpoint file with --teacher-arch")
    p.add_argument("--teacher-arch", help="timm architecture of a --teacher checkpoint file (its classes, "
                   "channels and image size are the data's)")
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--seed", type=seed, default=0, help="seed of the train/val split")
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--json", action="store_true")
    data_flags(p)
    return p


def run(args: argparse.Namespace) -> int:
    # The parser lets exactly one of --des, --bundle, --teacher through.
    if args.teacher_arch is not None and args.teacher is None:  # it would be ignored
        raise ValueError("--teacher-arch describes a --teacher checkpoint file; it does not apply to --des or --bundle")
    model, meta = None, {}
    if args.des is not None:
        model = load_des(args.des)
        size, chans = model.lets_model_args["img_size"], model.lets_model_args["in_chans"]
    elif args.bundle is not None:
        model = load_bundle(args.bundle)
        lg = model.cfg.learngene
        size, chans = lg.img_size, lg.in_chans
        meta = {"num_classes": lg.num_classes, "in_chans": lg.in_chans, "img_size": lg.img_size}
    else:
        # A teacher folder records its input; a checkpoint file takes the data's.
        meta = inputs.teacher_meta(args) or {}
        size, chans = meta.get("img_size"), meta.get("in_chans")
    with distributed_session(args.device) as env:
        splits = inputs.splits(args, image_size=inputs.given(args.image_size, size),
                               channels=inputs.given(args.channels, chans))
        if args.des is not None:
            check_des_fits(model, splits, f"Des-Net {args.des!r}")
        else:
            # A CNN teacher takes any image size, so only a bundle's size is checked.
            what = f"bundle {args.bundle!r}" if args.bundle is not None else f"teacher {args.teacher!r}"
            check_fits(what, splits, meta.get("num_classes"), meta.get("in_chans"),
                       meta.get("img_size") if args.bundle is not None else None)
        if model is None:
            model = load_teacher(args.teacher, args.teacher_arch, num_classes=splits.num_classes,
                                 in_chans=splits.in_chans, img_size=splits.image_size)
        metrics = evaluate_split(model, splits, args.split, batch_size=args.batch_size, env=env)
        recorded = recorded_input_norm(model)
        norm = recorded or InputNorm.of(splits)
        metrics["input_norm"] = dict(norm.to_dict(), source="model" if recorded is not None else "data")
        if recorded is None and env.is_main:
            # An older artifact, or a checkpoint file: its training statistics are not known.
            print("note: the model records no input normalization (a checkpoint file, or saved by an older "
                  "lets_core), so the images were normalized with the statistics of this run's training split, "
                  "which --train-limit, --val-size and --seed change", file=sys.stderr)
        if env.is_main:
            print(json.dumps(metrics) if args.json else
                  f"{args.split} top-1 {metrics['top1']:.4f} (loss {metrics['loss']:.4f}, {metrics['count']} images)")
    return 0
