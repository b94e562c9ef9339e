"""The parts of the ``lets`` parsers that several subcommands share: the help formatter, the
subparser with its --config flag, the flag groups (data, training recipe, model, stage 1, Des-Net),
and the flags the two experiment commands (demo, compare) share.

Defaults come from the Python API's own defaults (TrainConfig, ElasticConfig), so the command line
and the library cannot drift apart; choices come from :mod:`lets_core.cli.choices`.
"""

from __future__ import annotations

import argparse

from ..elastic import ElasticConfig
from ..train.config import TrainConfig
from ..train.recipes import LARGE_DATASET
from .choices import (AMP_MODES, CHANNELS, DATASETS, DEFAULT_PRESET, DEVICES, ELASTIC_TARGETS, F_INITS, G_INITS,
                      PRESETS, STAGE1_RECIPES, STRATEGIES)
from .types import count, finite_float, index_list, positive_int, rate, seed, val_size

_T = TrainConfig()


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one to show (not None / False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or action.default is True:
            return action.help or ""
        return super()._get_help_string(action)


def subparser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_Formatter)
    p.add_argument("--config", metavar="FILE", help="JSON file of option values (keys: option names with "
                   "underscores); command-line flags override it")
    return p


def data_flags(p: argparse.ArgumentParser, image_size_default: int | None = None) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    g.add_argument("--data-dir", help="Fashion-MNIST folder (default $LETS_FASHION_MNIST_DIR or "
                   "/usr/share/datasets/fashion-mnist) or the image folder")
    g.add_argument("--image-size", type=positive_int, default=image_size_default,
                   help="resize images to this square size (default: the model's / the data's own)")
    g.add_argument("--channels", type=int, choices=CHANNELS, help="convert images to 1 or 3 channels")
    g.add_argument("--val-size", type=val_size, default=0.1,
                   help="validation fraction (<1) or count (>=1) of the training data")
    g.add_argument("--train-limit", type=positive_int, help="use a seeded random subset of this many training images")
    g.add_argument("--test-limit", type=positive_int, help="use a seeded random subset of this many test images")


def train_flags(p: argparse.ArgumentParser, lr: float = _T.lr, alpha: float | None = None,
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
    g.add_argument("--amp", choices=AMP_MODES, default=_T.amp,
                   help="mixed precision (auto: bf16/fp16 on GPU, off on CPU)")
    g.add_argument("--no-augment", dest="augment", action="store_false", help="no random shifts and flips")
    g.add_argument("--seed", type=seed, default=_T.seed)
    g.add_argument("--num-workers", type=count, help="DataLoader workers per process (default: sized for the machine)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    g.add_argument("--device", choices=DEVICES, help="default: CUDA when available")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")


def model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    # No defaults here: a value given where it does not apply (e.g. with `finetune --des`) is
    # refused, so it must be told apart from a default (cli.inputs resolves them).
    g.add_argument("--preset", choices=PRESETS, help=f"LetsConfig preset (default {DEFAULT_PRESET}; classes follow "
                   "the data)")
    g.add_argument("--model-config", metavar="FILE", help="LetsConfig JSON (instead of --preset)")
    g.add_argument("--drop-path", type=rate, help="stochastic depth rate (default: the model configuration's; "
                   "a saved Des-Net's own with `finetune --des`)")


def stage1_flags(p: argparse.ArgumentParser) -> None:
    e = ElasticConfig()
    g = p.add_argument_group("stage 1: recipe, F/G initialization and elastic training (beyond the paper)")
    g.add_argument("--recipe", choices=STAGE1_RECIPES, default="auto",
                   help="defaults of --epochs, --lr, --warmup-epochs, --f-init, --g-init and the lr scales: "
                   "'small-data' (chosen on validation splits of small datasets; epochs from the dataset's "
                   f"size), 'paper' (the paper's ImageNet recipe), 'auto' (small-data below "
                   f"{LARGE_DATASET:,} training images); flags given override it")
    g.add_argument("--f-init", choices=F_INITS, help="F initialization (default: --model-config's, else "
                   "the recipe's)")
    g.add_argument("--g-init", choices=G_INITS, help="G initialization (default: --model-config's, else "
                   "the recipe's)")
    g.add_argument("--f-lr-scale", type=finite_float, help="lr multiplier of the F matrices (default: the recipe's)")
    g.add_argument("--g-lr-scale", type=finite_float,
                   help="lr multiplier of the G coefficients (default: the recipe's)")
    g.add_argument("--elastic", action="store_true", help="also train sampled Des-Nets at every step "
                   "(the smallest size plus --elastic-random random sizes)")
    # The --elastic-* values default to None so that one given without --elastic can be refused
    # (it was silently dropped); train-aux fills in ElasticConfig's defaults.
    g.add_argument("--elastic-random", type=count,
                   help=f"random sizes per step besides the smallest (default {e.num_random})")
    g.add_argument("--elastic-min-heads", type=positive_int, help="smallest heads sampled (default: the learngene's)")
    g.add_argument("--elastic-min-depth", type=positive_int, help="smallest depth sampled (default: the learngene's)")
    g.add_argument("--elastic-max-depth", type=positive_int, help="largest depth sampled (default: the Aux depth)")
    g.add_argument("--elastic-target", choices=ELASTIC_TARGETS,
                   help=f"what the sampled Des-Nets distill from (default {e.target})")
    g.add_argument("--elastic-weight", type=finite_float,
                   help=f"weight of the Des-Nets' mean loss (default {e.weight})")
    g.add_argument("--elastic-strategy", choices=STRATEGIES,
                   help=f"selection of the sampled Des-Nets (emit with the same one; default {e.strategy})")


def des_flags(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("Des-Net")
    g.add_argument("--heads", type=positive_int, required=required, help="heads (width = heads x head_dim)")
    g.add_argument("--depth", type=positive_int, help="blocks (default: the plan's length)")
    g.add_argument("--strategy", choices=STRATEGIES,
                   help="which new neurons to keep (default: the one an elastic bundle was trained with, else "
                   "continuous)")
    g.add_argument("--plan", type=index_list,
                   help="comma-separated Aux layer per Des layer, e.g. 0,2,4,6 (default: automatic)")


def experiment_flags(p: argparse.ArgumentParser, defaults) -> None:
    """The flags that mean the same in both experiment commands (``lets demo``, ``lets compare``),
    with the defaults of the command's configuration (``DemoConfig``, ``CompareConfig``)."""
    p.add_argument("--seed", type=seed, default=defaults.seed)
    p.add_argument("--teacher-epochs", type=positive_int)
    p.add_argument("--alpha", type=finite_float, default=defaults.alpha)
    p.add_argument("--tau", type=finite_float, default=defaults.tau)
    p.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy)
    p.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    p.add_argument("--test-limit", type=positive_int)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--device", choices=DEVICES)
