"""``lets finetune``: stage 2, fine-tune a Des-Net (saved, emitted on the fly, or from scratch) and test it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...bundle import load_bundle
from ...des import emit_des
from ...train import distributed_session, evaluate_split, finetune, load_des, scratch_des
from ...train.origin import state_fingerprint
from .. import inputs
from ..fits import check_des_fits
from ..flags import data_flags, des_flags, model_flags, subparser, train_flags


def build(sub) -> argparse.ArgumentParser:
    p = subparser(sub, "finetune", "stage 2: fine-tune a Des-Net (saved, emitted on the fly, or from scratch) "
                  "and test it")
    src = p.add_argument_group("what to train (one of)").add_mutually_exclusive_group(required=True)
    src.add_argument("--des", help="Des-Net folder written by `lets emit`")
    src.add_argument("--bundle", help="emit from this bundle with --heads/--depth/--strategy/--plan")
    src.add_argument("--scratch", action="store_true", help="the baseline: --heads/--depth from timm's random init")
    p.add_argument("--out", default="runs/finetune",
                   help="output folder (model/, checkpoint.pt, log.jsonl, result.json)")
    des_flags(p, required=False)
    model_flags(p)
    data_flags(p)
    train_flags(p)
    return p


# The flags each source leaves unused: refused rather than ignored (`--des --heads 4` trained the
# saved size, and `--des --drop-path` trained without stochastic depth, both exiting 0).
UNUSED_BY = {"des": ("heads", "depth", "strategy", "plan", "preset", "model_config"),
             "bundle": ("preset", "model_config"),  # the bundle holds its configuration
             "scratch": ("strategy", "plan")}


def run(args: argparse.Namespace) -> int:
    # The parser lets exactly one of --des, --bundle, --scratch through.
    source = "des" if args.des is not None else "bundle" if args.bundle is not None else "scratch"
    unused = inputs.given_flags(args, UNUSED_BY[source])
    if unused:
        raise ValueError(f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to --{source}: "
                         + {"des": "it fine-tunes the saved Des-Net as it is (only --drop-path changes it)",
                            "bundle": "the bundle holds its model configuration",
                            "scratch": "a scratch Des-Net is not emitted"}[source] + "; drop them")
    with distributed_session(args.device) as env:
        # What the run starts from, kept in its checkpoint: a resume from another source is refused.
        model, base_cfg = None, None
        if args.des is not None:
            model = load_des(args.des, drop_path_rate=args.drop_path)
            origin = {"source": "des", "weights_sha256": state_fingerprint(model),
                      "drop_path": model.lets_model_args["drop_path_rate"]}
        elif args.bundle is not None:
            if args.heads is None:
                raise ValueError("--bundle needs --heads (and --depth or --plan)")
            aux = load_bundle(args.bundle)
            plan, strategy = inputs.plan(args.plan), inputs.emit_strategy(args, args.bundle)
            drop_path = inputs.given(args.drop_path, 0.0)
            model = emit_des(aux, args.heads, args.depth, strategy=strategy, plan=plan, drop_path_rate=drop_path)
            origin = {"source": "bundle", "bundle_sha256": state_fingerprint(aux), "heads": args.heads,
                      "depth": len(model.blocks), "strategy": strategy, "plan": plan, "drop_path": drop_path}
        elif args.heads is None or args.depth is None:
            raise ValueError("--scratch needs --heads and --depth")
        else:
            base_cfg = inputs.model_config(args, None)
        if model is not None:
            size, chans = model.lets_model_args["img_size"], model.lets_model_args["in_chans"]
        else:
            size, chans = base_cfg.learngene.img_size, base_cfg.learngene.in_chans
        splits = inputs.splits(args, image_size=inputs.given(args.image_size, size),
                               channels=inputs.given(args.channels, chans))
        if model is None:
            cfg = base_cfg if args.model_config else inputs.model_config(args, splits.num_classes)
            # cfg holds --drop-path when given, else the configuration's rate
            model = scratch_des(cfg, args.heads, args.depth, drop_path_rate=cfg.drop_path_rate, seed=args.seed)
            origin = {"source": "scratch", "heads": args.heads, "depth": args.depth, "seed": args.seed,
                      "drop_path": cfg.drop_path_rate}
        source = (f"Des-Net {args.des!r}" if args.des is not None else
                  f"the Des-Net emitted from {args.bundle!r}" if args.bundle is not None else "the scratch Des-Net")
        check_des_fits(model, splits, source)
        result = finetune(model, splits, inputs.recipe(args), args.out, resume=args.resume, env=env, origin=origin)
        test = evaluate_split(result.model, splits, env=env)
        if env.is_main:
            summary = {"test_top1": test["top1"], "test_loss": test["loss"], "history": result.history}
            (Path(args.out) / "result.json").write_text(json.dumps(summary, indent=2))
            print(f"test top-1 {test['top1']:.4f}; model saved in {Path(args.out) / 'model'}")
    return 0
