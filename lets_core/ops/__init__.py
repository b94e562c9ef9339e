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
the argument-check helpers (the twin of csrc/common/checks.cpp). Every public module of this folder
is imported here, in name order, and the names in its ``__all__`` (its public wrappers) are this
package's, so a new op file needs no line here. CONTRIBUTING.md, "Adding an op", lists the files a
new op touches.
"""

from __future__ import annotations

import importlib
import pkgutil

from .. import _extension
from . import _registry  # noqa: F401


def _import_op_files() -> list[str]:
    """Import every public module of this folder, in name order (importing an op file defines its
    ops), then bind here the names of each one's ``__all__``; returns those names."""
    infos = sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in infos if not info.name.startswith("_")]
    # Bound only once all are imported: the first import of a module sets the package attribute of
    # its name, which would replace a wrapper of the same name (group_mix) bound before it.
    names: list[str] = []
    for module in modules:
        for name in getattr(module, "__all__", ()):
            if name in names:
                raise ImportError(f"lets_core.ops: {name!r} is in the __all__ of two op files; rename one")
            globals()[name] = getattr(module, name)
            names.append(name)
    return names


__all__ = _import_op_files()

# Every schema is defined above; the compiled library only adds kernels to them.
_extension.load()
