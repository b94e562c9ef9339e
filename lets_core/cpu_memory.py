"""Keeping freed CPU memory for reuse (glibc malloc settings), opt-in.

PyTorch's CPU tensors come from ``malloc``. glibc serves every block above its mmap threshold
(32 MiB at most, by default) with a fresh ``mmap`` and gives it back to the system on ``free``, so
the next tensor of that size starts on pages the kernel must fault in and zero one 4 KiB page at a
time. A paper-size generation step allocates about 1 GB of such blocks per step (the generated
weights, their gradients and the temporaries between them); measured on this project's 2-core
machine, those page faults were ~20% of the step (1.33-1.42 s with ~200,000 faults per step, against
1.07-1.11 s with none, ``benchmarks/bench_blas_limit.py``). The GPU has a caching allocator that
avoids this; glibc can be told to do the same: serve large blocks from its heap and keep freed
ones for the next request.

The price is that memory freed by the process is not returned to the system: its resident size
stays near its peak. That is the usual trade of a training process (PyTorch's CUDA allocator does the
same), not of a library a user imports into something else, hence a function to call, not an import
side effect. The ``lets`` training commands call it (``LETS_CORE_CPU_MEMORY=release`` turns it off).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import warnings

__all__ = ["ENV", "MODES", "reuse_freed_memory", "reuse_unless_disabled"]

# Set to "release" to keep glibc's defaults in the ``lets`` training commands.
ENV = "LETS_CORE_CPU_MEMORY"
# The two ways a process can treat freed memory: keep it for reuse, or release it (glibc's default).
MODES = ("reuse", "release")

# mallopt's parameters (glibc malloc.h) and the largest value its int argument takes.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_INT_MAX = 2**31 - 1


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks of up to 2 GiB for reuse instead of unmapping them.

    Sets the mmap threshold (blocks above it get their own mapping, returned on free) and the trim
    threshold (free memory at the top of the heap above it is returned) to 2 GiB - 1. Affects the
    whole process and lasts until it exits. Returns True when both settings were taken; False, with
    a warning, where the C library is not glibc (macOS, musl) or refuses them: nothing changes then.

    Example:
        >>> import lets_core.cpu_memory as cpu_memory
        >>> cpu_memory.reuse_freed_memory()  # on glibc (Linux)
        True
    """
    libc = _glibc()
    if libc is None:
        warnings.warn("reuse_freed_memory: the C library is not glibc; malloc settings unchanged",
                      RuntimeWarning, stacklevel=2)
        return False
    taken = [libc.mallopt(ctypes.c_int(param), ctypes.c_int(_INT_MAX)) == 1
             for param in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD)]
    if not all(taken):
        warnings.warn(f"reuse_freed_memory: glibc refused mallopt (mmap threshold taken: {taken[0]}, "
                      f"trim threshold taken: {taken[1]})", RuntimeWarning, stacklevel=2)
    return all(taken)


def reuse_unless_disabled() -> bool:
    """What the training commands do: :func:`reuse_freed_memory` unless ``$LETS_CORE_CPU_MEMORY``
    is ``release``. Any other value than ``release`` or ``reuse`` is refused, naming both."""
    value = os.environ.get(ENV, "reuse")
    if value not in MODES:
        raise ValueError(f"{ENV}={value!r} is not valid; allowed: 'reuse' (the default) or 'release'")
    return value == "reuse" and reuse_freed_memory()


def _glibc():
    """The process's C library if it is glibc (it has gnu_get_libc_version), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version
        libc.mallopt
    except (OSError, AttributeError, TypeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc
