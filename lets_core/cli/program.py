"""The ``lets`` command line: info, train-teacher, train-aux, emit, finetune, evaluate, demo, compare.

Every flag maps to an argument of a Python function (lets_core.train, lets_core.demo), and every
subcommand accepts ``--config FILE``: a JSON object whose keys are the flag names with
underscores (``{"epochs": 5, "batch_size": 256}``); flags given on the command line win. Each
value is checked as its flag is, switches take JSON booleans (``{"resume": true}``,
``{"augment": false}`` for ``--no-augment``), and required flags may come from the file.
Training subcommands run under ``torchrun`` unchanged (DDP, gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .. import cpu_memory
from ..errors import StrategyWarning
from .commands import COMMANDS
from .config_file import config_argv

# Training subcommands re-execute themselves once with this set (see _passive_openmp).
_OMP_ENV = "OMP_WAIT_POLICY"


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="lets", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs = {name: command.build(sub) for name, command in COMMANDS.items()}
    return parser, subs


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; the values of a ``--config`` file are turned into flags placed before it.

    The file's values thus go through each flag's own type, choices and action, required flags
    (and required one-of groups) given in the file count, and a flag repeated on the command line
    wins (argparse keeps the last occurrence).
    """
    parser, subs = build_parser()
    command = next((a for a in argv if not a.startswith("-")), None)  # the top level has only --help
    sub = subs.get(command)
    if sub is None:
        return parser.parse_args(argv)
    # First pass to find --config (as argparse reads it: --config=F, abbreviations) while the file
    # may still supply the required flags; the parser is built per call, so changing it is local.
    required = [a for a in sub._actions if a.required] + [g for g in sub._mutually_exclusive_groups if g.required]
    for item in required:
        item.required = False
    first = parser.parse_args(argv)
    for item in required:
        item.required = True
    if not first.config:
        return parser.parse_args(argv)
    at = argv.index(command) + 1
    return parser.parse_args([*argv[:at], *config_argv(first.config, sub, first), *argv[at:]])


def main(argv: list[str] | None = None) -> int:
    # Only the process's own entry point (`lets`, `python -m lets_core.cli`: argv None) may
    # re-execute: main([...]) called from Python code (a notebook, a test) would otherwise replace
    # that whole process with the command, ending it silently.
    entry_point = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    command = COMMANDS[args.command]
    if command.trains and entry_point:
        _passive_openmp(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never let timm reach for the network
    try:
        if command.trains:
            # Large freed blocks stay mapped for the next step (lets_core/cpu_memory.py: ~20% of a
            # paper-size generation step on CPU was page faults on freshly mapped memory).
            cpu_memory.reuse_unless_disabled()
        with warnings.catch_warnings():
            # The commands that emit say this themselves, as a one-line note (cli/inputs.py: emit_strategy).
            warnings.simplefilter("ignore", StrategyWarning)
            return command.run(args) or 0
    except (ValueError, OSError, FloatingPointError) as exc:
        # Every user-input error in lets_core is a ValueError naming the bad value (LetsConfigError,
        # BundleError, CheckpointError, DatasetError among them); an OSError is a path that cannot
        # be read or written; a FloatingPointError a loss that is not finite, which names the setting
        # to change. Each is the user's to fix, so one line, not a traceback.
        print(f"lets {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        # "[Errno 13] Permission denied: 'x'" -> "'x': permission denied"
        message = f"{str(exc.filename)!r}: {exc.strerror[:1].lower()}{exc.strerror[1:]}"
    else:
        message = str(exc) or type(exc).__name__
    return " ".join(message.split())


def _passive_openmp(argv: list[str]) -> None:
    """Re-run this process once with OMP_WAIT_POLICY=PASSIVE unless the user set a policy.

    torch's OpenMP threads spin while waiting for each other; when another process shares the
    cores (measured on a 2-core machine during a compile) that spinning made every training step
    30x slower. Passive waiting costs little on an idle machine. The variable is read only when
    torch loads, which has already happened here, hence the re-execution.
    """
    if _OMP_ENV in os.environ:
        return
    env = dict(os.environ, **{_OMP_ENV: "PASSIVE"})
    # The new process must run the package this one runs. `python -m lets_core.cli` put the current
    # folder first on the path, so `lets demo` started inside a checkout re-ran the checkout's code
    # (and its missing or stale compiled library) instead of the installed package.
    home = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {home!r}); from lets_core.cli.program import main; sys.exit(main())"
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-c", code, *argv], env)
