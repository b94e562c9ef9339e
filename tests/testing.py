"""Shared helpers of the ops and extension tests: devices, dtypes and the tolerance rule."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import torch

import lets_core  # noqa: F401  (registers the ops, loads the extension)
from lets_core import _extension

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
LOW_PRECISION = [torch.bfloat16, torch.float16]
DTYPES = [torch.float32, *LOW_PRECISION]


def extension_loaded() -> bool:
    return _extension.STATE.loaded


def random_leaves(device: str, seed: int) -> Callable[..., torch.Tensor]:
    """``t(*shape)``: random float64 tensors on ``device`` that require grad, from one seeded generator."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device).requires_grad_()
    return t


def per_op(table: str, *args) -> dict:
    """The union of ``table(*args)`` over the op test files that define it. Each
    tests/test_ops_<op>.py keeps its op's tables beside its other tests: ``opcheck_samples(device)``
    (arguments for torch.library.opcheck, read by test_ops_registry.py) and ``bad_arguments()``
    (arguments the op must refuse, read by test_ops_checks.py), keyed by op or case name."""
    merged: dict = {}
    for path in sorted(Path(__file__).resolve().parent.glob("test_ops_*.py")):
        module = importlib.import_module(path.stem)  # the module pytest collected (tests/ is on sys.path)
        if hasattr(module, table):
            merged.update(getattr(module, table)(*args))
    return merged


def non_contiguous(t: torch.Tensor) -> torch.Tensor:
    """The same values as ``t`` in a tensor whose last dimension is strided (every other element
    of a buffer twice as wide), so kernels cannot assume a dense layout."""
    buf = torch.empty(*t.shape[:-1], 2 * max(t.shape[-1], 1), dtype=t.dtype, device=t.device)
    view = buf[..., ::2][..., : t.shape[-1]]
    view.copy_(t)
    assert t.numel() < 2 or not view.is_contiguous()
    return view


def assert_matches(op: Callable, reference: Callable, args: list, dtype: torch.dtype) -> None:
    """The op's output against the reference, with engineering.md's rule for low precision.

    float64/float32: close to the reference at the same dtype. float16/bfloat16: the op's error
    against the float64 reference is at most twice plain PyTorch's (the reference run at that
    dtype), plus a floor of a few ulps of the output scale for results PyTorch gets exactly.
    """
    cast = [a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    out = op(*cast)
    if dtype in (torch.float64, torch.float32):
        torch.testing.assert_close(out, reference(*cast), rtol=1e-5 if dtype == torch.float32 else 1e-10,
                                   atol=1e-5 if dtype == torch.float32 else 1e-10)
        return
    # The exact answer: the reference in float64 on the very same (already rounded) inputs.
    exact = reference(*[a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in cast])
    plain = reference(*cast).double()
    err_op = (out.double() - exact).abs().max().item() if out.numel() else 0.0
    err_plain = (plain - exact).abs().max().item() if out.numel() else 0.0
    scale = exact.abs().max().item() if out.numel() else 0.0
    floor = 4 * torch.finfo(dtype).eps * max(scale, 1.0)
    assert err_op <= 2 * err_plain + floor, (
        f"{dtype}: error {err_op:.3g} vs plain PyTorch {err_plain:.3g} (allowed 2x + {floor:.3g})"
    )
