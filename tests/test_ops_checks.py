"""The argument checks of the two kernels of every op are twins: the compiled kernels'
(csrc/common/checks.cpp and check_<op> in csrc/ops/<op>.cpp) and the reference's
(lets_core/ops/_checks.py and check_<op> in lets_core/ops/<op>.py) raise the same ValueError,
with the same message, on the same bad arguments.

The cases run in this process, on whichever path it uses, and in a child process on the other
one (LETS_CORE_DISABLE_EXTENSION=1 when this process runs the compiled kernels; the compiled
kernels, required, when it runs the fallback), and the messages are compared one by one. Run as a
script, this file prints the messages of its own path as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest
import torch

import lets_core  # noqa: F401  (registers the ops, loads the extension)
from lets_core import _extension
from lets_core.ops import _registry
from testing import per_op


def bad_cases() -> dict[str, tuple[str, tuple]]:
    """Case -> (op, arguments the op must refuse), from each op's test file (``bad_arguments`` in
    tests/test_ops_<op>.py): together they hit every check of checks.cpp and csrc/ops/<op>.cpp."""
    return per_op("bad_arguments")


def messages() -> dict[str, str]:
    """Each case's error as ``ValueError: <message>`` (or what happened instead), on this path."""
    out = {}
    for name, (op, args) in sorted(bad_cases().items()):
        try:
            getattr(torch.ops.lets_core, op)(*args)
        except Exception as exc:  # noqa: BLE001  (the type is part of what is compared)
            out[name] = f"{type(exc).__name__}: {exc}"
        else:
            out[name] = "no error"
    return out


def test_every_op_has_bad_cases():
    assert {op for op, _ in bad_cases().values()} == set(_registry.OPS)


def test_every_case_is_a_value_error_naming_the_op():
    cases = bad_cases()
    for name, message in messages().items():
        assert message.startswith(f"ValueError: lets_core::{cases[name][0]}: "), (name, message)


def test_compiled_and_reference_checks_give_the_same_messages():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETS_CORE_")}
    if _extension.STATE.loaded:
        env["LETS_CORE_DISABLE_EXTENSION"] = "1"
    else:
        env["LETS_CORE_REQUIRE_EXTENSION"] = "1"
    # From a scratch directory, so the child imports the installed package, as this process does.
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tempfile.gettempdir())
    if proc.returncode != 0 and not _extension.STATE.loaded and "not in use" in proc.stderr:
        pytest.skip("the compiled library is not built: there is no second path to compare with")
    assert proc.returncode == 0, proc.stderr
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    here = messages()
    assert other.keys() == here.keys()
    compiled, reference = (here, other) if _extension.STATE.loaded else (other, here)
    differ = {name: (compiled[name], reference[name]) for name in here if compiled[name] != reference[name]}
    assert not differ, "compiled vs reference:\n" + "\n".join(f"{n}:\n  {c}\n  {r}" for n, (c, r) in differ.items())


if __name__ == "__main__":
    print(json.dumps(messages()))
