"""The generation arithmetic of LeTs, as a small set of batched ops.

Everything the Aux-Net and Des-Net builders compute from learngene, F and G goes through the
``lets_core`` custom ops (``torch.ops.lets_core.*``), which run the compiled CPU/CUDA kernels of
``lets_core._C`` when it is loaded and their pure-PyTorch reference otherwise. One file per op
holds its schema, reference kernel, argument checks, fake kernel, autograd formula and public
wrapper:

- ``widen.py``: ops ``widen`` (E(F_out) W E(F_in)^T over a stack of blocks, fused q|k|v via
  chunks) and ``widen_adjoint`` (its adjoint, the weight gradient); wrappers
  :func:`widen_linear` (weight and bias) and :func:`widen_vector` (LayerNorm gamma/beta).
- ``group_mix.py``: op and wrapper :func:`group_mix`, the depth transformation, weighted sums of
  the blocks of each group.
- ``widen_mix.py``: op ``widen_mix``, both at once, one call per module type; wrappers
  :func:`widen_mix_linear` and :func:`widen_mix_vector` run it in the cheapest order of its
  products (``widen_mix_order.py``).
- ``select_by_norm.py``: op and wrapper :func:`select_by_norm`, rank row units by L1/L2 norm,
  keep the top or bottom k, gather them.

``_registry.py`` holds the namespace and the registration shared by the op files, ``_checks.py``
the argument-check helpers (the twin of csrc/common/checks.cpp). CONTRIBUTING.md, "Adding an op",
lists the files a new op touches.
"""

from __future__ import annotations

from .. import _extension
from . import _registry, widen_mix_order  # noqa: F401

# The op files, in the order lets_core.info lists their ops; each defines its ops when imported.
from .widen import widen_linear, widen_vector
from .group_mix import group_mix
from .widen_mix import widen_mix_linear, widen_mix_vector
from .select_by_norm import select_by_norm

# Every schema is defined above; the compiled library only adds kernels to them.
_extension.load()

__all__ = ["widen_linear", "widen_vector", "group_mix", "widen_mix_linear", "widen_mix_vector", "select_by_norm"]
