"""The ``lets`` command line: info, train-teacher, train-aux, emit, finetune, evaluate, demo.

Every flag maps to an argument of a Python function (lets_core.train, lets_core.demo), and every
subcommand accepts ``--config FILE``: a JSON object whose keys are the flag names with
underscores (``{"epochs": 5, "batch_size": 256}``); flags given on the command line win.
Training subcommands run under ``torchrun`` unchanged (DDP, gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import cli_args

# Training subcommands re-execute themselves once with this set (see _passive_openmp).
_OMP_ENV = "OMP_WAIT_POLICY"


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="lets", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs = {name: build(sub) for name, build in cli_args.SUBCOMMANDS.items()}
    return parser, subs


def parse(argv: list[str]) -> argparse.Namespace:
    parser, subs = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config", None):
        sub = subs[args.command]
        values = load_config_file(args.config, sub)
        sub.set_defaults(**values)
        args = parser.parse_args(argv)
    return args


def load_config_file(path: str, sub: argparse.ArgumentParser) -> dict:
    """Read a JSON config file whose keys must be this subcommand's option names (underscored)."""
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"lets: config file {path!r} does not exist")
    try:
        values = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"lets: config file {path!r} is not valid JSON ({exc})") from exc
    if not isinstance(values, dict):
        raise SystemExit(f"lets: config file {path!r} must hold a JSON object of option values")
    allowed = {a.dest for a in sub._actions if a.dest not in ("help", "config")}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise SystemExit(f"lets: config file {path!r} has unknown keys {unknown}; allowed: {sorted(allowed)}")
    return values


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    if args.command in cli_args.TRAINING_COMMANDS:
        _passive_openmp(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never let timm reach for the network
    from . import cli_commands

    try:
        return getattr(cli_commands, "cmd_" + args.command.replace("-", "_"))(args) or 0
    except (ValueError, FileNotFoundError) as exc:
        # Every user-input error in lets_core is a ValueError naming the bad value; show it plainly.
        print(f"lets {args.command}: error: {exc}", file=sys.stderr)
        return 2


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
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "lets_core.cli", *argv], env)


if __name__ == "__main__":
    sys.exit(main())
