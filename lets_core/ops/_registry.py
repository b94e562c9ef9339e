"""What every op file of lets_core.ops shares: the ``lets_core`` namespace, the library its
schemas are defined in, and the registration of a schema with its checked reference kernel.

Each op file (``widen.py``, ``group_mix.py``, ``widen_mix.py``, ``select_by_norm.py``) calls
:func:`define` once per op, then registers its fake kernel and autograd formula. The compiled
library (``lets_core._C``, loaded by ``lets_core._extension`` after every op file is imported)
adds CPU and CUDA kernels for the same schemas, which the dispatcher prefers.
"""

from __future__ import annotations

from typing import Callable

import torch

NAMESPACE = "lets_core"
# The ops defined so far, in definition order (every op once the package is imported).
OPS: list[str] = []

LIBRARY = torch.library.Library(NAMESPACE, "DEF")

# The ops as the public wrappers call them. benchmarks/bench_ops.py swaps this for the plain
# reference functions to time the generation without custom ops; autograd formulas call
# torch.ops.lets_core directly.
lets_core = torch.ops.lets_core


def define(schema: str, check: Callable[..., None], reference: Callable) -> None:
    """Define the op ``schema`` and register ``reference`` behind ``check`` as its
    ``CompositeExplicitAutograd`` kernel: the pure-PyTorch fallback, on any device, failing with
    the same messages as the compiled kernel (``check`` is the twin of its C++ checks)."""
    name = schema.split("(", 1)[0]
    LIBRARY.define(schema)

    def checked(*args):
        check(*args)
        return reference(*args)

    checked.__name__ = f"{name}_checked_reference"
    LIBRARY.impl(name, checked, "CompositeExplicitAutograd")
    OPS.append(name)
