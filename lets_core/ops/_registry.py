"""What every op file of lets_core.ops shares: the ``lets_core`` namespace, the library its
schemas are defined in, and the registration of a schema with its checked reference kernel.

Each op file (``widen.py``, ``group_mix.py``, ``widen_mix.py``, ``select_by_norm.py``) calls
:func:`define` once per op, then registers its fake kernel and autograd formula. The compiled
library (``lets_core._C``, loaded by ``lets_core._extension`` after every op file is imported)
adds CPU and CUDA kernels for the same schemas, which the dispatcher prefers.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

NAMESPACE = "lets_core"
# The ops defined so far, in definition order (every op once the package is imported).
OPS: list[str] = []
# Their schemas, as defined (the compiled library must have been built for these: _schema_fingerprint.py).
SCHEMAS: list[str] = []

LIBRARY = torch.library.Library(NAMESPACE, "DEF")

# The ops whose work is matrix products, which autocast runs in its lower precision (see
# _AutocastBoundary); each op file says so in its define(..., autocast=True), so that a new op
# changes no list here. select_by_norm ranks norms, which autocast keeps in full precision.
AUTOCAST_OPS: set[str] = set()


class _AutocastBoundary:
    """``torch.ops.lets_core`` with autocast decided once, at the op's boundary.

    Inside an op, autocast would reach only some of the products (the reference's einsums and
    ``at::bmm`` are cast, a compiled kernel's ``bmm_out`` is not), so the compiled and the
    reference kernels would compute in different precisions. Instead, under autocast the
    floating-point inputs of a matmul op are cast to the autocast dtype, the op runs with autocast
    off, and its result is cast back to the inputs' dtype: every kernel computes the same thing,
    the generated weights keep the parameters' dtype (a LayerNorm fed a float32 activation needs
    float32 weights; ``F.linear`` casts its weight under autocast anyway), and autograd carries the
    gradients back through both casts. widen_mix's second output (the partial product its
    backward reuses) stays in the compute dtype: only the first is a result."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        op = getattr(torch.ops.lets_core, name)
        if name not in AUTOCAST_OPS:
            return op

        def call(*args: Any) -> Any:
            device = next((a.device.type for a in args if isinstance(a, torch.Tensor)), None)
            if device is None or not autocast_enabled(device):
                return op(*args)
            dtype, result_dtype = torch.get_autocast_dtype(device), args[0].dtype
            # float64 is left alone, as torch's autocast leaves it: a float64 Aux-Net under
            # autocast was silently computed in bf16 (logits off by 1e-3).
            cast = [a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() and a.dtype != torch.float64
                    else a for a in args]
            with torch.autocast(device, enabled=False):
                out = op(*cast)
            if isinstance(out, tuple):
                return (out[0].to(result_dtype), *out[1:])
            return out.to(result_dtype)

        return call


def autocast_enabled(device: str) -> bool:
    """Whether autocast is on for ``device``; False for a device type that has no autocast at all
    (torch raises there: the meta tensors of shape inference would otherwise fail in every op)."""
    try:
        return torch.is_autocast_enabled(device)
    except RuntimeError:
        return False


# The ops as the public wrappers call them. benchmarks/bench_ops.py swaps this for the plain
# reference functions to time the generation without custom ops; autograd formulas call
# torch.ops.lets_core directly.
lets_core: Any = _AutocastBoundary()


def define(schema: str, check: Callable[..., None], reference: Callable, *, autocast: bool = False) -> None:
    """Define the op ``schema`` and register ``reference`` behind ``check`` as its
    ``CompositeExplicitAutograd`` kernel: the pure-PyTorch fallback, on any device, failing with
    the same messages as the compiled kernel (``check`` is the twin of its C++ checks).
    ``autocast``: the op's work is matrix products, which autocast runs in its lower precision
    (:data:`AUTOCAST_OPS`)."""
    name = schema.split("(", 1)[0]
    LIBRARY.define(schema)

    def checked(*args):
        check(*args)
        return reference(*args)

    checked.__name__ = f"{name}_checked_reference"
    LIBRARY.impl(name, checked, "CompositeExplicitAutograd")
    OPS.append(name)
    SCHEMAS.append(schema)
    if autocast:
        AUTOCAST_OPS.add(name)
