"""``lets train-aux``: stage 1, train the Aux-Net (learngene + F + G) by distillation; saves OUT/bundle."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ...config import LetsConfig
from ...elastic import ElasticConfig
from ...train import TrainConfig, distributed_session, evaluate_split, load_teacher, train_aux
from ...train.recipes import RECIPE_LR_BASE_BATCH, resolve_recipe
from .. import inputs
from ..fits import check_fits
from ..flags import data_flags, model_flags, stage1_flags, subparser, train_flags


def build(sub) -> argparse.ArgumentParser:
    p = subparser(sub, "train-aux", "stage 1: train the Aux-Net (learngene + F + G) by distillation; saves OUT/bundle")
    p.add_argument("--out", default="runs/aux", help="output folder (bundle/, checkpoint.pt, log.jsonl)")
    g = p.add_argument_group("teacher")
    g.add_argument("--teacher", help="teacher folder from train-teacher, or a checkpoint file with --teacher-arch")
    g.add_argument("--teacher-arch", help="timm architecture of a --teacher checkpoint file")
    model_flags(p)
    stage1_flags(p)
    data_flags(p)
    train_flags(p, alpha=1.0, from_recipe=True)
    return p


def run(args: argparse.Namespace) -> int:
    with distributed_session(args.device) as env:
        cfg = inputs.model_config(args, None)
        lg = cfg.learngene
        elastic = _elastic(args, cfg)
        _check_loss_flags(args, elastic)
        teacher_meta = None
        # The objective distills from the teacher through alpha, or through the elastic Des-Nets' target.
        needs_teacher = (f"--alpha {args.alpha}" if args.alpha > 0 else
                         f"--elastic-target {elastic.target}" if elastic is not None and elastic.target != "aux" else None)
        if needs_teacher is not None:
            if not args.teacher:
                raise ValueError(f"{needs_teacher} distills from a teacher: pass --teacher (a folder from "
                                 "`lets train-teacher`), or --alpha 0 (and --elastic-target aux) for no distillation")
            teacher_meta = inputs.teacher_meta(args)  # a wrong path fails before the data is read
        elif args.teacher or args.teacher_arch:
            raise ValueError("--teacher is not used: --alpha 0 without --elastic-target teacher or both distills "
                             "from nothing; drop --teacher/--teacher-arch, or set --alpha above 0")
        splits = inputs.splits(args, image_size=inputs.given(args.image_size, lg.img_size),
                               channels=inputs.given(args.channels, lg.in_chans))
        if args.model_config is None:
            cfg = inputs.model_config(args, splits.num_classes)
        teacher = None
        if needs_teacher is not None:
            if teacher_meta is not None:  # a folder records its classes and channels; a file takes the data's
                check_fits(f"teacher {args.teacher!r}", splits, teacher_meta.get("num_classes"),
                           teacher_meta.get("in_chans"))
            teacher = load_teacher(args.teacher, args.teacher_arch, num_classes=splits.num_classes,
                                   in_chans=splits.in_chans, img_size=splits.image_size)
        cfg = _apply_stage1_recipe(args, cfg, len(splits.train), env.is_main)
        result = train_aux(cfg, splits, inputs.recipe(args), args.out, teacher=teacher,
                           resume=args.resume, env=env, elastic=elastic)
        test = evaluate_split(result.model, splits, env=env)
        if env.is_main:
            print(f"Aux-Net: test top-1 {test['top1']:.4f}; bundle saved in {Path(args.out) / 'bundle'}")
    return 0


def _apply_stage1_recipe(args: argparse.Namespace, cfg: LetsConfig, train_images: int, say: bool) -> LetsConfig:
    """Fill the stage-1 flags left unset from --recipe (in ``args``) and return the model configuration
    with its F/G initializations: a flag wins, then --model-config's, then the recipe's."""
    recipe = resolve_recipe(args.recipe, train_images, args.batch_size)
    given = {k for k in ("epochs", "lr", "warmup_epochs", "f_lr_scale", "g_lr_scale", "f_init", "g_init")
             if getattr(args, k) is not None}
    for key in ("epochs", "lr", "warmup_epochs", "f_lr_scale", "g_lr_scale"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(recipe, key))
    if "lr" not in given:
        # The recipe quotes its lr per RECIPE_LR_BASE_BATCH images and --lr is read per --lr-base-batch:
        # taken as it is, --lr-base-batch 64 trained at 8 times the recipe's lr.
        args.lr = recipe.lr * args.lr_base_batch / RECIPE_LR_BASE_BATCH
    inits = {}
    for key in ("f_init", "g_init"):
        if getattr(args, key) is not None:
            inits[key] = getattr(args, key)
        elif not args.model_config:
            inits[key] = getattr(recipe, key)
    cfg = dataclasses.replace(cfg, transform=dataclasses.replace(cfg.transform, **inits)) if inits else cfg
    if say:
        # What will run: the recipe's values where no flag was given.
        used = dataclasses.replace(recipe, **{k: getattr(args, k) for k in ("epochs", "warmup_epochs",
                                                                             "f_lr_scale", "g_lr_scale")},
                                   lr=args.lr * RECIPE_LR_BASE_BATCH / args.lr_base_batch,  # as describe() quotes it
                                   f_init=cfg.transform.f_init, g_init=cfg.transform.g_init)
        overridden = f"; given on the command line: {', '.join(sorted(given))}" if given else ""
        print(f"{used.describe()} ({train_images:,} training images){overridden}", flush=True)
    return cfg


def _check_loss_flags(args: argparse.Namespace, elastic: ElasticConfig | None) -> None:
    """A loss setting the loss does not use is refused, not ignored (the runs were identical)."""
    if args.label_smoothing and args.alpha >= 1:
        raise ValueError(f"--label-smoothing {args.label_smoothing:g} smooths the labels of the cross-entropy term, "
                         f"which --alpha {args.alpha:g} weighs 0; drop it, or set --alpha below 1")
    if args.tau != TrainConfig.tau and args.alpha == 0 and elastic is None:
        raise ValueError(f"--tau {args.tau:g} is the distillation temperature, and --alpha 0 without --elastic "
                         "distills nothing; drop it, or set --alpha above 0")


# The --elastic-* flags and the ElasticConfig fields they set.
ELASTIC_FLAGS = {"elastic_random": "num_random", "elastic_min_heads": "min_heads", "elastic_min_depth": "min_depth",
                 "elastic_max_depth": "max_depth", "elastic_target": "target", "elastic_weight": "weight",
                 "elastic_strategy": "strategy"}


def _elastic(args: argparse.Namespace, cfg: LetsConfig) -> ElasticConfig | None:
    """The elastic stage-1 settings of --elastic (None without it), checked against the sizes
    ``cfg`` can emit before any data is read; an --elastic-* value given without --elastic is
    refused, since it would change nothing. A refused value is named by its flag."""
    flags = {flag: "--" + flag.replace("_", "-") for flag in ELASTIC_FLAGS if getattr(args, flag) is not None}
    given = {ELASTIC_FLAGS[flag]: getattr(args, flag) for flag in flags}
    if not args.elastic:
        if given:
            raise ValueError(f"{', '.join(flags.values())} only apply to elastic stage 1: add --elastic, or drop them")
        return None
    try:
        elastic = ElasticConfig(**given)
        elastic.sampler(cfg)  # the heads and depths this configuration can emit
    except ValueError as exc:
        # ElasticConfig's errors carry the fields they are about (min_heads); name the flags that set them.
        about = getattr(exc, "fields", ())
        named = [f"{name} {getattr(args, flag)}" for flag, name in flags.items() if ELASTIC_FLAGS[flag] in about]
        raise type(exc)(f"{', '.join(named) or '--elastic'}: {exc}") from None
    return elastic
