"""``--config FILE``: a JSON object of a subcommand's option values, turned into the flags that say
the same, so that each value goes through its flag's own type, choices and action."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
