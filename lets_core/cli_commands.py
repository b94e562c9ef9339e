"""What each ``lets`` subcommand does: argparse namespace -> calls of the Python API."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from . import cli_args, presets
from .config import LetsConfig
from .data import FASHION_MNIST_INSTALL, fashion_mnist_available, load_splits
from .data.sources import fashion_mnist_dir
from .train import (TrainConfig, distributed_session, evaluate_split, finetune, load_des, load_teacher, scratch_des,
                    train_aux, train_teacher)
from .train.teacher import TEACHER_META


def cmd_info(args: argparse.Namespace) -> int:
    import timm

    import lets_core

    facts = {"lets_core": lets_core.__version__, "python": platform.python_version(), "torch": torch.__version__,
             "timm": timm.__version__, "threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
             "fashion_mnist": str(fashion_mnist_dir()) if fashion_mnist_available() else
             f"not installed ({FASHION_MNIST_INSTALL})"}
    print(json.dumps(facts, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in facts.items()))
    try:
        from . import info as extension_info
    except ImportError:
        print("compiled extension report: not available in this lets_core")
    else:
        extension_info.main(["--json"] if args.json else [])
    if args.preset:
        print(getattr(presets, args.preset)().to_json())
    return 0


def cmd_train_teacher(args: argparse.Namespace) -> int:
    with distributed_session(args.device) as env:
        splits = _splits(args)
        _, meta = train_teacher(splits, _recipe(args), args.out, args.arch, resume=args.resume, env=env)
        if env.is_main:
            print(f"teacher {args.arch}: test top-1 {meta['test_top1']:.4f}; saved in {args.out}")
    return 0


def cmd_train_aux(args: argparse.Namespace) -> int:
    with distributed_session(args.device) as env:
        cfg = _model_config(args, None)
        lg = cfg.learngene
        teacher_meta = None
        if args.alpha > 0:
            if not args.teacher:
                raise ValueError(f"--alpha {args.alpha} distills from a teacher: pass --teacher (a folder from "
                                 "`lets train-teacher`), or --alpha 0 for the no-distillation ablation")
            teacher_meta = _teacher_meta(args)  # a wrong path fails before the data is read
        splits = _splits(args, image_size=_given(args.image_size, lg.img_size),
                         channels=_given(args.channels, lg.in_chans))
        if args.model_config is None:
            cfg = _model_config(args, splits.num_classes)
        teacher = None
        if teacher_meta is not None:
            _check_fits(f"teacher {args.teacher!r}", splits, teacher_meta.get("num_classes"),
                        teacher_meta.get("in_chans"))
            teacher = load_teacher(args.teacher, args.teacher_arch, num_classes=splits.num_classes,
                                   in_chans=splits.in_chans, img_size=splits.image_size)
        cfg = _apply_stage1_recipe(args, cfg, len(splits.train), env.is_main)
        result = train_aux(cfg, splits, _recipe(args), args.out, teacher=teacher,
                           resume=args.resume, env=env, elastic=_elastic(args))
        test = evaluate_split(result.model, splits, env=env)
        if env.is_main:
            print(f"Aux-Net: test top-1 {test['top1']:.4f}; bundle saved in {Path(args.out) / 'bundle'}")
    return 0


def cmd_emit(args: argparse.Namespace) -> int:
    from .bundle import load_bundle
    from .des import emit_des, save_des

    aux = load_bundle(args.bundle)
    des = emit_des(aux, args.heads, args.depth, strategy=args.strategy, plan=_plan(args.plan),
                   drop_path_rate=args.drop_path)
    save_des(des, args.out)
    params = sum(p.numel() for p in des.parameters())
    print(f"Des-H{args.heads}-L{len(des.blocks)} ({params:,} parameters, strategy {args.strategy}) saved in {args.out}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    chosen = [name for name in ("des", "bundle", "scratch") if getattr(args, name)]
    if len(chosen) != 1:
        raise ValueError(f"finetune needs exactly one of --des, --bundle, --scratch; got {chosen or 'none'}")
    with distributed_session(args.device) as env:
        model, base_cfg = None, None
        if args.des:
            model = load_des(args.des)
        elif args.bundle:
            from .bundle import load_bundle
            from .des import emit_des

            if args.heads is None:
                raise ValueError("--bundle needs --heads (and --depth or --plan)")
            model = emit_des(load_bundle(args.bundle), args.heads, args.depth, strategy=args.strategy,
                             plan=_plan(args.plan), drop_path_rate=args.drop_path)
        elif args.heads is None or args.depth is None:
            raise ValueError("--scratch needs --heads and --depth")
        else:
            base_cfg = _model_config(args, None)
        if model is not None:
            size, chans = model.lets_model_args["img_size"], model.lets_model_args["in_chans"]
        else:
            size, chans = base_cfg.learngene.img_size, base_cfg.learngene.in_chans
        splits = _splits(args, image_size=_given(args.image_size, size), channels=_given(args.channels, chans))
        if model is None:
            cfg = base_cfg if args.model_config else _model_config(args, splits.num_classes)
            model = scratch_des(cfg, args.heads, args.depth, drop_path_rate=args.drop_path, seed=args.seed)
        source = (f"Des-Net {args.des!r}" if args.des else
                  f"the Des-Net emitted from {args.bundle!r}" if args.bundle else "the scratch Des-Net")
        _check_des_fits(model, splits, source)
        result = finetune(model, splits, _recipe(args), args.out, resume=args.resume, env=env)
        test = evaluate_split(result.model, splits, env=env)
        if env.is_main:
            summary = {"test_top1": test["top1"], "test_loss": test["loss"], "history": result.history}
            (Path(args.out) / "result.json").write_text(json.dumps(summary, indent=2))
            print(f"test top-1 {test['top1']:.4f}; model saved in {Path(args.out) / 'model'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    chosen = [name for name in ("des", "bundle", "teacher") if getattr(args, name)]
    if len(chosen) != 1:
        raise ValueError(f"evaluate needs exactly one of --des, --bundle, --teacher; got {chosen or 'none'}")
    model, meta = None, {}
    if args.des:
        model = load_des(args.des)
        size, chans = model.lets_model_args["img_size"], model.lets_model_args["in_chans"]
    elif args.bundle:
        from .bundle import load_bundle

        model = load_bundle(args.bundle)
        lg = model.cfg.learngene
        size, chans = lg.img_size, lg.in_chans
        meta = {"num_classes": lg.num_classes, "in_chans": lg.in_chans, "img_size": lg.img_size}
    else:
        # A teacher folder records its input; a checkpoint file takes the data's.
        meta = _teacher_meta(args) or {}
        size, chans = meta.get("img_size"), meta.get("in_chans")
    with distributed_session(args.device) as env:
        splits = _splits(args, image_size=_given(args.image_size, size), channels=_given(args.channels, chans))
        if args.des:
            _check_des_fits(model, splits, f"Des-Net {args.des!r}")
        else:
            # A CNN teacher takes any image size, so only a bundle's size is checked.
            what = f"bundle {args.bundle!r}" if args.bundle else f"teacher {args.teacher!r}"
            _check_fits(what, splits, meta.get("num_classes"), meta.get("in_chans"),
                        meta.get("img_size") if args.bundle else None)
        if model is None:
            model = load_teacher(args.teacher, args.teacher_arch, num_classes=splits.num_classes,
                                 in_chans=splits.in_chans, img_size=splits.image_size)
        metrics = evaluate_split(model, splits, args.split, batch_size=args.batch_size, env=env)
        if env.is_main:
            print(json.dumps(metrics) if args.json else
                  f"{args.split} top-1 {metrics['top1']:.4f} (loss {metrics['loss']:.4f}, {metrics['count']} images)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import STAGE1_VARIANTS, DemoConfig, run_demo

    overrides = {k: getattr(args, k) for k in ("out", "dataset", "data_dir", "seed", "strategy", "teacher_epochs",
                                               "aux_epochs", "alpha", "tau", "aux_lr", "f_init", "g_init",
                                               "f_lr_scale", "g_lr_scale", "elastic_random", "elastic_target",
                                               "elastic_weight", "des_lr", "batch_size", "train_limit",
                                               "test_limit", "progress")}
    if args.stage1:
        overrides["stage1"] = _list_flag(args.stage1, cli_args.name_list(STAGE1_VARIANTS), "--stage1")
    if args.sizes:
        overrides["sizes"] = _list_flag(args.sizes, cli_args.size_list, "--sizes")
    if args.scratch_epochs:
        overrides["scratch_epochs"] = _list_flag(args.scratch_epochs, cli_args.int_list, "--scratch-epochs")
    with distributed_session(args.device) as env:
        run_demo(DemoConfig.for_mode(args.quick, args.full, **overrides), env)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import METHOD_NAMES, CompareConfig, run_compare

    overrides = {k: getattr(args, k) for k in ("out", "dataset", "data_dir", "seed", "teacher_epochs",
                                               "stage1_epochs", "stage1_lr", "tune_lr", "alpha", "tau", "strategy",
                                               "batch_size", "train_limit", "test_limit", "progress")}
    if args.methods:
        overrides["methods"] = _list_flag(args.methods, cli_args.name_list(METHOD_NAMES), "--methods")
    if args.sizes:
        overrides["sizes"] = _list_flag(args.sizes, cli_args.size_list, "--sizes")
    if args.tune_epochs:
        overrides["tune_epochs"] = _list_flag(args.tune_epochs, cli_args.count_list, "--tune-epochs")
    with distributed_session(args.device) as env:
        run_compare(CompareConfig.for_mode(args.quick, **overrides), env)
    return 0


def _recipe(args: argparse.Namespace) -> TrainConfig:
    names = [f for f in TrainConfig.__dataclass_fields__ if hasattr(args, f)]
    return TrainConfig(**{f: getattr(args, f) for f in names})


def _splits(args: argparse.Namespace, image_size: int | None = None, channels: int | None = None):
    return load_splits(args.dataset, args.data_dir, image_size=image_size or args.image_size,
                       channels=channels or args.channels, val_size=_val_size(args.val_size),
                       train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed)


def _val_size(value: float) -> float | int:
    # One flag for both forms: a fraction below 1, a count from 1 up.
    return int(value) if value >= 1 and float(value).is_integer() else value


def _model_config(args: argparse.Namespace, num_classes: int | None) -> LetsConfig:
    if args.model_config:
        path = Path(args.model_config)
        if not path.is_file():
            raise ValueError(f"--model-config {str(path)!r} does not exist")
        cfg = LetsConfig.from_json(path.read_text())
    else:
        cfg = getattr(presets, args.preset)(**({"num_classes": num_classes} if num_classes else {}))
    if args.drop_path:
        import dataclasses

        cfg = dataclasses.replace(cfg, drop_path_rate=args.drop_path)
    return cfg


def _apply_stage1_recipe(args: argparse.Namespace, cfg: LetsConfig, train_images: int, say: bool) -> LetsConfig:
    """Fill the stage-1 flags left unset from --recipe (in ``args``) and return the model configuration
    with its F/G initializations: a flag wins, then --model-config's, then the recipe's."""
    import dataclasses

    from .train.recipes import resolve_recipe

    recipe = resolve_recipe(args.recipe, train_images, args.batch_size)
    given = {k for k in ("epochs", "lr", "warmup_epochs", "f_lr_scale", "g_lr_scale", "f_init", "g_init")
             if getattr(args, k) is not None}
    for key in ("epochs", "lr", "warmup_epochs", "f_lr_scale", "g_lr_scale"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(recipe, key))
    inits = {}
    for key in ("f_init", "g_init"):
        if getattr(args, key) is not None:
            inits[key] = getattr(args, key)
        elif not args.model_config:
            inits[key] = getattr(recipe, key)
    cfg = dataclasses.replace(cfg, transform=dataclasses.replace(cfg.transform, **inits)) if inits else cfg
    if say:
        # What will run: the recipe's values where no flag was given.
        used = dataclasses.replace(recipe, **{k: getattr(args, k) for k in ("epochs", "lr", "warmup_epochs",
                                                                             "f_lr_scale", "g_lr_scale")},
                                   f_init=cfg.transform.f_init, g_init=cfg.transform.g_init)
        overridden = f"; given on the command line: {', '.join(sorted(given))}" if given else ""
        print(f"{used.describe()} ({train_images:,} training images){overridden}", flush=True)
    return cfg


def _elastic(args: argparse.Namespace):
    if not args.elastic:
        return None
    from .elastic import ElasticConfig

    return ElasticConfig(num_random=args.elastic_random, min_heads=args.elastic_min_heads,
                         min_depth=args.elastic_min_depth, max_depth=args.elastic_max_depth,
                         target=args.elastic_target, weight=args.elastic_weight, strategy=args.elastic_strategy)


def _plan(text: str | list[int] | None) -> list[int] | None:
    return _list_flag(text, cli_args.index_list, "--plan") if text else None


def _list_flag(value, parse, flag: str) -> list:
    """A comma-list flag's value: parsed and checked by its type (cli_args) already, or still text
    where the Namespace was built in Python."""
    if not isinstance(value, str):
        return list(value)
    try:
        return parse(value)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{flag} {exc}") from exc


def _given(value, default):
    # Not `value or default`: a flag set to 0 must reach the check that refuses it, not vanish.
    return default if value is None else value


def _teacher_meta(args: argparse.Namespace) -> dict | None:
    """What --teacher's folder records (teacher.json), or None for a checkpoint file with --teacher-arch.

    Checked here, before any data is loaded, so that a wrong path says so rather than failing
    later on what a checkpoint file would need.
    """
    path = Path(args.teacher)
    if not path.exists():
        raise ValueError(f"--teacher {args.teacher!r} does not exist; pass a folder written by `lets train-teacher` "
                         "or a checkpoint file with --teacher-arch")
    if path.is_file():
        if not args.teacher_arch:
            raise ValueError(f"--teacher {args.teacher!r} is a checkpoint file: pass its timm architecture with "
                             "--teacher-arch (a folder from `lets train-teacher` records it)")
        return None
    meta_path = path / TEACHER_META
    if not meta_path.is_file():
        raise ValueError(f"--teacher folder {args.teacher!r} has no {TEACHER_META}; pass a folder written by "
                         "`lets train-teacher`, or a checkpoint file with --teacher-arch")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(meta_path)!r} is not valid JSON ({exc}); train the teacher again") from exc
    needed = ("arch", "num_classes", "in_chans", "img_size")
    missing = [k for k in needed if k not in meta] if isinstance(meta, dict) else list(needed)
    if missing:
        raise ValueError(f"{str(meta_path)!r} lacks {missing}; a teacher.json holds {list(needed)}; "
                         "train the teacher again")
    if args.teacher_arch and args.teacher_arch != meta["arch"]:
        raise ValueError(f"--teacher-arch {args.teacher_arch!r} contradicts the teacher folder's architecture "
                         f"{meta['arch']!r}; --teacher-arch is for a checkpoint file, leave it out for a folder")
    return meta


def _check_des_fits(model, splits, what: str) -> None:
    model_args = getattr(model, "lets_model_args", {})
    _check_fits(what, splits, model_args.get("num_classes"), model_args.get("in_chans"), model_args.get("img_size"))


def _check_fits(what: str, splits, num_classes: int | None, in_chans: int | None, img_size: int | None = None) -> None:
    """Refuse data the model cannot take (None: not checked), naming both sides; otherwise the
    mismatch surfaces as an IndexError of the loss or a shape assertion deep inside timm."""
    pairs = (("{} classes", num_classes, splits.num_classes), ("{} channels", in_chans, splits.in_chans),
             ("{} px images", img_size, splits.image_size))
    bad = [(form.format(want), form.format(have)) for form, want, have in pairs if want is not None and want != have]
    if bad:
        want, have = (", ".join(side) for side in zip(*bad))
        raise ValueError(f"{what} takes {want} but the data has {have}; use data with the model's classes, and "
                         "--channels / --image-size matching the model")
