"""The choices of the ``lets`` flags, each read from the module that owns it (never re-typed here),
so that a dataset, strategy or method added there reaches ``--help`` and the checks of the flags.

    >>> DEMO_DATASETS == demo.DEMO_DATASETS and STRATEGIES == selection.STRATEGIES
    True
    >>> list(PRESETS)
    ['tiny', 'paper']
"""

from __future__ import annotations

from typing import Callable

from .. import compare, config, demo, elastic, presets, selection
from ..config import LetsConfig
from ..data import sources
from ..train import config as train_config
from ..train import recipes

# Data.
DATASETS = sources.DATASETS  # train-teacher, train-aux, finetune, evaluate
DEMO_DATASETS = demo.DEMO_DATASETS  # demo: auto, fashion-mnist, digits
COMPARE_DATASETS = compare.COMPARE_DATASETS  # compare: the demo's and image folders
SPLITS = ("train", "val", "test")  # the splits of lets_core.data.load_splits
CHANNELS = (1, 3)  # what --channels converts images to (lets_core.data checks the same)

# Models and training.
# lets_core.presets holds the functions but no table of them: the names --preset takes, in the
# order --help shows them.
PRESETS: dict[str, Callable[..., LetsConfig]] = {"tiny": presets.tiny, "paper": presets.paper}
DEFAULT_PRESET = "tiny"
STRATEGIES = selection.STRATEGIES  # which new neurons a Des-Net keeps
F_INITS = config.F_INIT_SCHEMES
G_INITS = config.G_INIT_SCHEMES
STAGE1_RECIPES = recipes.RECIPE_NAMES  # --recipe
STAGE1_VARIANTS = demo.STAGE1_VARIANTS  # demo --stage1: paper, elastic
ELASTIC_TARGETS = elastic.TARGETS  # what elastically trained Des-Nets distill from
AMP_MODES = train_config.AMP_MODES
DEVICES = ("cpu", "cuda")  # lets_core.train.distributed_session's device (default: CUDA when available)

# compare --methods: LeTs' variants (lets_core.compare_report.LETS_METHODS), then the paper's
# baselines (lets_core.baselines.METHODS), as lets_core.compare joins them.
COMPARE_METHODS = compare.METHOD_NAMES
