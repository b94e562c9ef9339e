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
    """Parse ``argv``; the values of a ``--config`` file are turned into flags placed before it.

    The file's values thus go through each flag's own type, choices and action, required flags
    given in the file count, and a flag repeated on the command line wins (argparse keeps the
    last occurrence).
    """
    parser, subs = build_parser()
    command = next((a for a in argv if not a.startswith("-")), None)  # the top level has only --help
    sub = subs.get(command)
    if sub is None:
        return parser.parse_args(argv)
    # First pass to find --config (as argparse reads it: --config=F, abbreviations) while the file
    # may still supply the required flags; the parser is built per call, so changing it is local.
    required = [a for a in sub._actions if a.required]
    for action in required:
        action.required = False
    first = parser.parse_args(argv)
    for action in required:
        action.required = True
    if not first.config:
        return parser.parse_args(argv)
    at = argv.index(command) + 1
    return parser.parse_args([*argv[:at], *config_argv(first.config, sub, first), *argv[at:]])


def load_config_file(path: str, sub: argparse.ArgumentParser) -> dict:
    """Read a JSON config file whose keys must be this subcommand's option names (underscored)."""
    file = Path(path)
    if not file.is_file():
        sub.error(f"config file {path!r} {'is not a file' if file.exists() else 'does not exist'}")
    try:
        values = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        sub.error(f"config file {path!r} cannot be read ({exc})")
    except json.JSONDecodeError as exc:
        sub.error(f"config file {path!r} is not valid JSON ({exc})")
    if not isinstance(values, dict):
        sub.error(f"config file {path!r} must hold a JSON object of option values, got {type(values).__name__}")
    allowed = {a.dest for a in sub._actions if a.option_strings and a.dest not in ("help", "config")}
    unknown = sorted(set(values) - allowed)
    if unknown:
        sub.error(f"config file {path!r} has unknown keys {unknown}; allowed: {sorted(allowed)}")
    return values


def config_argv(path: str, sub: argparse.ArgumentParser, given: argparse.Namespace | None = None) -> list[str]:
    """The flags that say what the config file ``path`` says, each value checked as the flag checks it.

    JSON true/false switch a flag without a value: ``{"resume": true}`` is ``--resume``,
    ``{"augment": false}`` is ``--no-augment``; anything but a JSON boolean there is refused
    (the string "false" would otherwise read as true). ``null`` leaves the flag's default. A
    comma-list flag (``--sizes``, ``--plan``, ...) also takes a JSON list. A file value in a
    mutually exclusive group whose other flag is on the command line (``given``) gives way to it.
    """
    values = load_config_file(path, sub)
    actions = {a.dest: a for a in sub._actions if a.option_strings}
    overridden = set()
    for group in sub._mutually_exclusive_groups:
        on_command_line = {a.dest for a in group._group_actions
                           if given is not None and getattr(given, a.dest, a.default) != a.default}
        if on_command_line:
            overridden |= {a.dest for a in group._group_actions} - on_command_line
    argv: list[str] = []
    for key, value in values.items():
        action = actions[key]
        flag = max(action.option_strings, key=len)
        where = f"config file {path!r}: {key!r}"
        if key in overridden or value is None:
            continue
        if action.nargs == 0:  # store_true / store_false
            if not isinstance(value, bool):
                sub.error(f"{where} must be true or false (a JSON boolean) as for {flag}, got {value!r}")
            if value == action.const:
                argv.append(flag)
            continue
        if isinstance(value, list) and getattr(action.type, "comma_list", False):
            value = ",".join("x".join(map(str, v)) if isinstance(v, list) else str(v) for v in value)
        if isinstance(value, (bool, list, dict)):
            sub.error(f"{where} must be a {'number' if action.type else 'string'} as for {flag}, got {value!r}")
        text = str(value)
        try:
            parsed = action.type(text) if action.type else text
        except argparse.ArgumentTypeError as exc:
            sub.error(f"{where}: {exc}")
        except (TypeError, ValueError):
            sub.error(f"{where} must be {getattr(action.type, '__name__', 'valid')} as for {flag}, got {value!r}")
        if action.choices is not None and parsed not in action.choices:
            sub.error(f"{where} must be one of {list(action.choices)}, got {value!r}")
        argv.append(f"{flag}={text}")  # "=" so that a value starting with "-" is not read as a flag
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    if args.command in cli_args.TRAINING_COMMANDS:
        _passive_openmp(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never let timm reach for the network
    from . import cli_commands

    try:
        return getattr(cli_commands, "cmd_" + args.command.replace("-", "_"))(args) or 0
    except (ValueError, OSError) as exc:
        # Every user-input error in lets_core is a ValueError naming the bad value (LetsConfigError,
        # BundleError, CheckpointError, DatasetError among them); an OSError is a path that cannot
        # be read or written. Either is the user's to fix, so one line, not a traceback.
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
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "lets_core.cli", *argv], env)


if __name__ == "__main__":
    sys.exit(main())
