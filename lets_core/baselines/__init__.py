"""Baselines the paper compares LeTs with, each producing plain timm ViTs of a requested
(heads, depth) that :func:`lets_core.train.finetune` trains like any Des-Net.

    >>> from lets_core.baselines import METHODS
    >>> sorted(METHODS)
    ['imwlm', 'lets-ligo', 'nested', 'pre-fin', 'scratch', 'sws', 'tleg']

Each method: ``source = METHODS[name].train_stage1(splits, teacher, cfg, train_cfg, out_dir)``,
then ``METHODS[name].emit(source, heads, depth)``; :func:`save_source` / :func:`load_source`
cache a stage-1 result (``train_stage1`` also writes it to ``out_dir/source``).
"""

from .registry import ALIASES, METHODS, Method, get_method
from .source import Source, load_source, save_source
from .stage1 import SOURCE_DIR

__all__ = ["ALIASES", "METHODS", "Method", "SOURCE_DIR", "Source", "get_method", "load_source", "save_source"]
