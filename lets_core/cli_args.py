"""Argument parsers of the ``lets`` subcommands (one builder per subcommand; shared flag groups).

Defaults come from the Python API's own defaults (TrainConfig, DemoConfig), so the command line
and the library cannot drift apart.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

from .config import F_INIT_SCHEMES, G_INIT_SCHEMES
from .data.sources import DATASETS
from .selection import STRATEGIES
from .train.config import AMP_MODES, TrainConfig
from .train.recipes import LARGE_DATASET, RECIPE_NAMES

PRESETS = ("tiny", "paper")
TRAINING_COMMANDS = ("train-teacher", "train-aux", "finetune", "demo", "compare")
_T = TrainConfig()


# Value types of the flags. Each raises ArgumentTypeError with a message naming the bad value and
# what is allowed, so argparse prints "lets CMD: error: argument --flag: ..." and exits 2. The
# same functions validate the values of a --config file (see cli.config_argv), so a file cannot
# smuggle in a value the flag would refuse.


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def count(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    # float() accepts "nan" and "inf"; no option of lets means either, and both would train
    # (or evaluate) silently to NaN.
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def rate(text: str) -> float:
    """A drop-path (stochastic depth) rate: a probability below 1."""
    value = _number(text, float)
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def val_size(text: str) -> float | int:
    """One flag for both forms: a fraction in [0, 1), or a whole count of images from 1 up."""
    value = _number(text, float)
    if math.isfinite(value) and 0 <= value < 1:
        return value
    if math.isfinite(value) and value >= 1 and value.is_integer():
        return int(value)
    raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1) or a whole count >= 1, got {text!r}")


def _items(text: str, parse_item: Callable[[str], object], form: str) -> list:
    values = []
    for item in (item.strip() for item in str(text).split(",")):
        try:
            values.append(parse_item(item))
        except ValueError:
            raise argparse.ArgumentTypeError(f"item {item!r} of {text!r} is not valid; expected {form}") from None
    return values


def _index(item: str) -> int:
    if not item.isdigit():  # digits only: no sign, no spaces, no empty item
        raise ValueError(item)
    return int(item)


def _positive(item: str) -> int:
    if _index(item) < 1:
        raise ValueError(item)
    return int(item)


def _comma_list(function: Callable[[str], list]) -> Callable[[str], list]:
    # A --config file may give these flags as a JSON list (see cli.config_argv).
    function.comma_list = True  # type: ignore[attr-defined]
    return function


@_comma_list
def int_list(text: str) -> list[int]:
    """Comma-separated positive integers (epoch budgets)."""
    return _items(text, _positive, "comma-separated positive integers, e.g. 1,2,4")


@_comma_list
def count_list(text: str) -> list[int]:
    """Comma-separated integers from 0 (tuning lengths, where 0 means "evaluate directly")."""
    return _items(text, _index, "comma-separated integers >= 0, e.g. 0,1,2,4")


@_comma_list
def index_list(text: str) -> list[int]:
    """Comma-separated indices from 0 (a depth plan: the Aux layer of each Des layer)."""
    return _items(text, _index, "comma-separated Aux layer indices, e.g. 0,2,4,6")


@_comma_list
def size_list(text: str) -> list[tuple[int, int]]:
    """Des-Net sizes HEADSxDEPTH, comma-separated: "2x4,3x6" -> [(2, 4), (3, 6)]."""
    def size(item: str) -> tuple[int, int]:
        heads, sep, depth = item.lower().partition("x")
        if not sep:
            raise ValueError(item)
        # "H3xL6" too: the Des-H3-L6 naming of the reports.
        return _positive(heads.strip().removeprefix("h")), _positive(depth.strip().removeprefix("l"))

    return _items(text, size, "comma-separated HEADSxDEPTH sizes of positive integers, e.g. 2x4,3x6")


def name_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """A type of comma-separated names among ``allowed``."""
    def name(item: str) -> str:
        if item not in allowed:
            raise ValueError(item)
        return item

    @_comma_list
    def names(text: str) -> list[str]:
        return _items(text, name, f"comma-separated names among {list(allowed)}")

    return names


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one to show (not None / False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or action.default is True:
            return action.help or ""
        return super()._get_help_string(action)


def _parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_Formatter)
    p.add_argument("--config", metavar="FILE", help="JSON file of option values (keys: option names with "
                   "underscores); command-line flags override it")
    return p


def _data_flags(p: argparse.ArgumentParser, image_size_default: int | None = None) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    g.add_argument("--data-dir", help="Fashion-MNIST folder (default $LETS_FASHION_MNIST_DIR or "
                   "/usr/share/datasets/fashion-mnist) or the image folder")
    g.add_argument("--image-size", type=positive_int, default=image_size_default,
                   help="resize images to this square size (default: the model's / the data's own)")
    g.add_argument("--channels", type=int, choices=(1, 3), help="convert images to 1 or 3 channels")
    g.add_argument("--val-size", type=val_size, default=0.1,
                   help="validation fraction (<1) or count (>=1) of the training data")
    g.add_argument("--train-limit", type=positive_int, help="use a seeded random subset of this many training images")
    g.add_argument("--test-limit", type=positive_int, help="use a seeded random subset of this many test images")


def _train_flags(p: argparse.ArgumentParser, lr: float = _T.lr, alpha: float | None = None,
                 from_recipe: bool = False) -> None:
    """The TrainConfig flags; with ``from_recipe`` epochs, lr and warm-up default to --recipe's values."""
    g = p.add_argument_group("training recipe (lets_core.train.TrainConfig)")
    recipe_note = " (default: from --recipe)" if from_recipe else ""
    g.add_argument("--epochs", type=positive_int, default=None if from_recipe else _T.epochs,
                   help=recipe_note.strip(" ()"))
    g.add_argument("--batch-size", type=positive_int, default=_T.batch_size, help="global batch over all processes")
    g.add_argument("--lr", type=finite_float, default=None if from_recipe else lr,
                   help="peak learning rate for --lr-base-batch images per step" + recipe_note)
    g.add_argument("--lr-base-batch", type=positive_int, default=_T.lr_base_batch,
                   help="linear scaling: lr x batch / this")
    g.add_argument("--min-lr-ratio", type=finite_float, default=_T.min_lr_ratio)
    g.add_argument("--warmup-epochs", type=finite_float, default=None if from_recipe else _T.warmup_epochs,
                   help=recipe_note.strip(" ()"))
    g.add_argument("--weight-decay", type=finite_float, default=_T.weight_decay)
    g.add_argument("--clip-grad", type=finite_float, default=_T.clip_grad, help="max gradient norm (none by default)")
    g.add_argument("--label-smoothing", type=finite_float, default=_T.label_smoothing)
    if alpha is not None:
        g.add_argument("--alpha", type=finite_float, default=alpha,
                       help="loss = (1-alpha) CE + alpha KD; 0 = no distillation")
        g.add_argument("--tau", type=finite_float, default=_T.tau, help="distillation temperature")
    g.add_argument("--amp", choices=AMP_MODES, default=_T.amp, help="mixed precision (auto: bf16/fp16 on GPU, off on CPU)")
    g.add_argument("--no-augment", dest="augment", action="store_false", help="no random shifts and flips")
    g.add_argument("--seed", type=int, default=_T.seed)
    g.add_argument("--num-workers", type=count, help="DataLoader workers per process (default: sized for the machine)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    g.add_argument("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")


def _model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=PRESETS, default="tiny", help="LetsConfig preset (classes follow the data)")
    g.add_argument("--model-config", metavar="FILE", help="LetsConfig JSON (instead of --preset)")
    g.add_argument("--drop-path", type=rate, default=0.0, help="stochastic depth rate")


def _stage1_flags(p: argparse.ArgumentParser) -> None:
    from .elastic import TARGETS, ElasticConfig

    e = ElasticConfig()
    g = p.add_argument_group("stage 1: recipe, F/G initialization and elastic training (beyond the paper)")
    g.add_argument("--recipe", choices=RECIPE_NAMES, default="auto",
                   help="defaults of --epochs, --lr, --warmup-epochs, --f-init, --g-init and the lr scales: "
                   "'small-data' (chosen on validation splits of small datasets; epochs from the dataset's "
                   f"size), 'paper' (the paper's ImageNet recipe), 'auto' (small-data below "
                   f"{LARGE_DATASET:,} training images); flags given override it")
    g.add_argument("--f-init", choices=F_INIT_SCHEMES, help="F initialization (default: --model-config's, else "
                   "the recipe's)")
    g.add_argument("--g-init", choices=G_INIT_SCHEMES, help="G initialization (default: --model-config's, else "
                   "the recipe's)")
    g.add_argument("--f-lr-scale", type=finite_float, help="lr multiplier of the F matrices (default: the recipe's)")
    g.add_argument("--g-lr-scale", type=finite_float,
                   help="lr multiplier of the G coefficients (default: the recipe's)")
    g.add_argument("--elastic", action="store_true", help="also train sampled Des-Nets at every step "
                   "(the smallest size plus --elastic-random random sizes)")
    g.add_argument("--elastic-random", type=count, default=e.num_random,
                   help="random sizes per step besides the smallest")
    g.add_argument("--elastic-min-heads", type=positive_int, help="smallest heads sampled (default: the learngene's)")
    g.add_argument("--elastic-min-depth", type=positive_int, help="smallest depth sampled (default: the learngene's)")
    g.add_argument("--elastic-max-depth", type=positive_int, help="largest depth sampled (default: the Aux depth)")
    g.add_argument("--elastic-target", choices=TARGETS, default=e.target,
                   help="what the sampled Des-Nets distill from")
    g.add_argument("--elastic-weight", type=finite_float, default=e.weight, help="weight of the Des-Nets' mean loss")
    g.add_argument("--elastic-strategy", choices=STRATEGIES, default=e.strategy,
                   help="selection of the sampled Des-Nets (emit with the same one)")


def _des_flags(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("Des-Net")
    g.add_argument("--heads", type=positive_int, required=required, help="heads (width = heads x head_dim)")
    g.add_argument("--depth", type=positive_int, help="blocks (default: the plan's length)")
    g.add_argument("--strategy", choices=STRATEGIES, default="continuous", help="which new neurons to keep")
    g.add_argument("--plan", type=index_list,
                   help="comma-separated Aux layer per Des layer, e.g. 0,2,4,6 (default: automatic)")


def info(sub) -> argparse.ArgumentParser:
    p = _parser(sub, "info", "versions, the compiled extension's status, data availability, a preset's configuration")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--preset", choices=PRESETS, help="also print this preset's LetsConfig")
    return p


def train_teacher(sub) -> argparse.ArgumentParser:
    p = _parser(sub, "train-teacher", "train (or reuse the cached) teacher classifier for stage-1 distillation")
    p.add_argument("--arch", default="lets-resnet-small", help="lets-resnet-small or any timm model name")
    p.add_argument("--out", default="runs/teacher", help="output folder (model.safetensors, teacher.json, log)")
    _data_flags(p)
    _train_flags(p, lr=4e-3)
    return p


def train_aux(sub) -> argparse.ArgumentParser:
    p = _parser(sub, "train-aux", "stage 1: train the Aux-Net (learngene + F + G) by distillation; saves OUT/bundle")
    p.add_argument("--out", default="runs/aux", help="output folder (bundle/, checkpoint.pt, log.jsonl)")
    g = p.add_argument_group("teacher")
    g.add_argument("--teacher", help="teacher folder from train-teacher, or a checkpoint file with --teacher-arch")
    g.add_argument("--teacher-arch", help="timm architecture of a --teacher checkpoint file")
    _model_flags(p)
    _stage1_flags(p)
    _data_flags(p)
    _train_flags(p, alpha=1.0, from_recipe=True)
    return p


def emit(sub) -> argparse.ArgumentParser:
    p = _parser(sub, "emit", "stage 2: build a Des-Net from a bundle and save it as a plain timm model")
    p.add_argument("--bundle", required=True, help="bundle folder (OUT/bundle of train-aux)")
    p.add_argument("--out", required=True, help="Des-Net folder to write (model.safetensors + config.json)")
    p.add_argument("--drop-path", type=rate, default=0.0, help="stochastic depth rate for its fine-tuning")
    _des_flags(p, required=True)
    return p


def finetune(sub) -> argparse.ArgumentParser:
    p = _parser(sub, "finetune", "stage 2: fine-tune a Des-Net (saved, emitted on the fly, or from scratch) and test it")
    src = p.add_argument_group("what to train (one of)")
    src.add_argument("--des", help="Des-Net folder written by `lets emit`")
    src.add_argument("--bundle", help="emit from this bundle with --heads/--depth/--strategy/--plan")
    src.add_argument("--scratch", action="store_true", help="the baseline: --heads/--depth from timm's random init")
    p.add_argument("--out", default="runs/finetune", help="output folder (model/, checkpoint.pt, log.jsonl, result.json)")
    _des_flags(p, required=False)
    _model_flags(p)
    _data_flags(p)
    _train_flags(p)
    return p


def evaluate(sub) -> argparse.ArgumentParser:
    p = _parser(sub, "evaluate", "top-1 of a Des-Net, an Aux-Net bundle or a teacher on a data split")
    src = p.add_argument_group("model (one of)")
    src.add_argument("--des", help="Des-Net folder")
    src.add_argument("--bundle", help="bundle folder (evaluates the Aux-Net)")
    src.add_argument("--teacher", help="teacher folder from train-teacher, or a checkpoint file with --teacher-arch")
    p.add_argument("--teacher-arch", help="timm architecture of a --teacher checkpoint file (its classes, "
                   "channels and image size are the data's)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    p.add_argument("--device", choices=("cpu", "cuda"))
    p.add_argument("--json", action="store_true")
    _data_flags(p)
    return p


def demo(sub) -> argparse.ArgumentParser:
    from .demo import STAGE1_VARIANTS, DemoConfig
    from .elastic import TARGETS

    d = DemoConfig()
    p = _parser(sub, "demo", "the whole pipeline on Fashion-MNIST: LeTs Des-Nets (paper and elastic stage 1) "
                "after 0 and 1 epoch vs scratch after 1, 2, 4")
    p.add_argument("--out", help="output folder (default runs/demo, runs/demo-quick or runs/demo-full)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run on a data subset (< 3 minutes on 2 cores)")
    mode.add_argument("--full", action="store_true", help="all training images, a 12-epoch elastic stage 1, "
                      "scratch for 1 and 4 epochs (one third of stage 1)")
    p.add_argument("--dataset", choices=("auto", "fashion-mnist", "digits"), default=d.dataset,
                   help="auto: Fashion-MNIST if installed, else digits")
    p.add_argument("--data-dir", help="Fashion-MNIST folder")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--sizes", type=size_list, help="Des-Nets as HEADSxDEPTH list, e.g. 2x4,3x6,4x8 (default: mode's)")
    p.add_argument("--strategy", choices=STRATEGIES, default=d.strategy)
    p.add_argument("--stage1", type=name_list(STAGE1_VARIANTS),
                   help=f"comma-separated stage-1 variants among {','.join(STAGE1_VARIANTS)} "
                   "(default: both)")
    p.add_argument("--teacher-epochs", type=positive_int)
    p.add_argument("--aux-epochs", type=positive_int)
    p.add_argument("--scratch-epochs", type=int_list,
                   help="comma-separated scratch budgets, e.g. 1,2,4 (default: mode's)")
    p.add_argument("--alpha", type=finite_float, default=d.alpha)
    p.add_argument("--tau", type=finite_float, default=d.tau)
    p.add_argument("--aux-lr", type=finite_float, default=d.aux_lr)
    p.add_argument("--f-init", choices=F_INIT_SCHEMES, default=d.f_init)
    p.add_argument("--g-init", choices=G_INIT_SCHEMES, default=d.g_init)
    p.add_argument("--f-lr-scale", type=finite_float, default=d.f_lr_scale)
    p.add_argument("--g-lr-scale", type=finite_float, default=d.g_lr_scale)
    p.add_argument("--elastic-random", type=count, default=d.elastic_random)
    p.add_argument("--elastic-target", choices=TARGETS, default=d.elastic_target)
    p.add_argument("--elastic-weight", type=finite_float, default=d.elastic_weight)
    p.add_argument("--des-lr", type=finite_float, default=d.des_lr,
                   help="shared by LeTs fine-tuning and scratch training")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--train-limit", type=positive_int,
                   help=f"training images (default {d.train_limit}, a seeded subset; 58000 = all)")
    p.add_argument("--test-limit", type=positive_int)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--device", choices=("cpu", "cuda"))
    return p


def compare(sub) -> argparse.ArgumentParser:
    from .compare import COMPARE_DATASETS, METHOD_NAMES, CompareConfig

    c = CompareConfig()
    p = _parser(sub, "compare", "LeTs against weight selection (imwlm), TLEG, SWS, a nested ViT, Pre-Fin and "
                "scratch: one teacher, stage-1 recipe and budget, tuning recipe; top-1 by tuning epochs per size")
    p.add_argument("--out", help="output folder, also the cache of finished runs (default runs/compare or "
                   "runs/compare-quick)")
    p.add_argument("--quick", action="store_true", help="smoke run of every method on a data subset")
    p.add_argument("--methods", type=name_list(METHOD_NAMES), help=f"comma-separated among {','.join(METHOD_NAMES)} "
                   "(default: all)")
    p.add_argument("--sizes", type=size_list, help="Des-Nets as HEADSxDEPTH list (default 2x4,3x6,4x8)")
    p.add_argument("--tune-epochs", type=count_list, help="comma-separated tuning lengths, 0 = direct "
                   "(default 0,1,2,4)")
    p.add_argument("--dataset", choices=COMPARE_DATASETS, default=c.dataset,
                   help="auto: Fashion-MNIST if installed, else digits; folder: --data-dir with a subfolder per class")
    p.add_argument("--data-dir", help="Fashion-MNIST folder or the image folder")
    p.add_argument("--seed", type=int, default=c.seed)
    p.add_argument("--teacher-epochs", type=positive_int)
    p.add_argument("--stage1-epochs", type=positive_int)
    p.add_argument("--stage1-lr", type=finite_float, default=c.stage1_lr)
    p.add_argument("--tune-lr", type=finite_float, default=c.tune_lr)
    p.add_argument("--alpha", type=finite_float, default=c.alpha)
    p.add_argument("--tau", type=finite_float, default=c.tau)
    p.add_argument("--strategy", choices=STRATEGIES, default=c.strategy)
    p.add_argument("--batch-size", type=positive_int, default=c.batch_size)
    p.add_argument("--train-limit", type=positive_int, help=f"training images (default {c.train_limit})")
    p.add_argument("--test-limit", type=positive_int)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--device", choices=("cpu", "cuda"))
    return p


SUBCOMMANDS = {"info": info, "train-teacher": train_teacher, "train-aux": train_aux, "emit": emit,
               "finetune": finetune, "evaluate": evaluate, "demo": demo, "compare": compare}
