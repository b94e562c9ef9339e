"""The table of ``lets`` subcommands: name -> how to build its parser, how to run it, whether it trains.

Each subcommand is one file here with ``build(subparsers) -> ArgumentParser`` and
``run(args) -> exit code``; ``lets --help`` lists them in this table's order. Adding one is a file
and a row.
"""

from __future__ import annotations

import argparse
from typing import Callable, NamedTuple

from . import compare, demo, emit, evaluate, finetune, info, train_aux, train_teacher


class Command(NamedTuple):
    build: Callable[..., argparse.ArgumentParser]  # (the subparsers action) -> its parser
    run: Callable[[argparse.Namespace], int]  # parsed flags -> exit code; ValueError/OSError: the user's error
    trains: bool  # passive OpenMP waits (program._passive_openmp) and reused freed memory (cpu_memory)


COMMANDS: dict[str, Command] = {
    "info": Command(info.build, info.run, trains=False),
    "train-teacher": Command(train_teacher.build, train_teacher.run, trains=True),
    "train-aux": Command(train_aux.build, train_aux.run, trains=True),
    "emit": Command(emit.build, emit.run, trains=False),
    "finetune": Command(finetune.build, finetune.run, trains=True),
    "evaluate": Command(evaluate.build, evaluate.run, trains=False),
    "demo": Command(demo.build, demo.run, trains=True),
    "compare": Command(compare.build, compare.run, trains=True),
}
