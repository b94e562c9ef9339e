"""Loading the compiled kernels (``lets_core._C``) without ever breaking ``import lets_core``.

The op schemas and the pure-PyTorch reference kernels are always registered (one file per op
under ``ops/``, e.g. ``ops/widen.py``).
Importing ``lets_core._C`` adds compiled CPU (and, if built, CUDA) kernels, which the dispatcher
then prefers. If the library is missing, was built for another torch, or is disabled, the reason
is recorded here and the reference runs.

Environment variables:
- ``LETS_CORE_DISABLE_EXTENSION=1``: do not load the compiled library (force the fallback).
- ``LETS_CORE_REQUIRE_EXTENSION=1``: a library that cannot be loaded is an ImportError, so a run
  that must use the compiled kernels (CI, the GPU check) cannot pass on the fallback. Where CUDA
  is available it also requires every op's compiled CUDA kernel: a build without them would
  otherwise pass every CUDA test on the reference.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

DISABLE_ENV = "LETS_CORE_DISABLE_EXTENSION"
REQUIRE_ENV = "LETS_CORE_REQUIRE_EXTENSION"
from ._build_record import DIGEST_FILE  # both builds write it beside the library (_build_record.py)

REBUILD = "pip install --no-build-isolation ."


@dataclass
class ExtensionState:
    """What happened when lets_core tried to load its compiled library."""

    loaded: bool = False
    reason: str = "not attempted"
    build: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


STATE = ExtensionState()


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ImportError(f"{name}={os.environ[name]!r} is not understood; allowed: 1/true/yes/on or 0/false/no/off")


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def load() -> ExtensionState:
    """Import ``lets_core._C`` once; record why it is not in use if it cannot be."""
    if STATE.reason != "not attempted":
        return STATE
    require = _env_flag(REQUIRE_ENV)
    if _env_flag(DISABLE_ENV):
        STATE.reason = f"disabled by {DISABLE_ENV}=1"
        if require:
            raise ImportError(f"lets_core: {REQUIRE_ENV}=1 and {DISABLE_ENV}=1 contradict each other")
        return STATE
    damage = _library_damage()
    if damage is not None:
        STATE.reason = damage
        if require:
            raise ImportError(f"lets_core: {REQUIRE_ENV}=1 but the compiled extension is not in use: {STATE.reason}")
        return STATE
    try:
        from . import _C  # noqa: F401  (importing registers the kernels)
    except ImportError as exc:  # missing file, or built against another torch (undefined symbols)
        if importlib.util.find_spec(f"{__package__}._C") is None:
            # Python's own words for a missing file here are "partially initialized module ... (most
            # likely due to a circular import)", which read like a bug in lets_core.
            STATE.reason = (f"lets_core._C could not be imported: it is not built (no compiled library in "
                            f"{str(Path(__file__).parent)!r}); build it with `{REBUILD}`, or in a source checkout "
                            f"`python setup.py build_ext --inplace`")
        else:
            STATE.reason = f"lets_core._C could not be imported: {exc}"
    except OSError as exc:  # e.g. a CUDA library that is not present on this machine
        STATE.reason = f"lets_core._C could not be loaded: {exc}"
    else:
        STATE.loaded = True
        STATE.reason = "loaded"
        STATE.build = dict(_C.build_info())
        built_for = STATE.build.get("torch_version", "unknown")
        if _major_minor(built_for) != _major_minor(torch.__version__):
            STATE.warnings.append(
                f"lets_core._C was built for torch {built_for} but torch {torch.__version__} is "
                f"running; rebuild with `pip install --no-build-isolation .`"
            )
    if STATE.loaded and torch.cuda.is_available() and not STATE.build.get("with_cuda"):
        # Said where `lets_core.info` and run reports show it: nothing else tells a GPU user that
        # every op on CUDA tensors runs the pure-PyTorch reference.
        STATE.warnings.append(
            "CUDA is available but lets_core._C was built without CUDA kernels, so lets_core ops on CUDA "
            f"tensors run the pure-PyTorch reference; rebuild with a CUDA toolkit (FORCE_CUDA=1 {REBUILD})")
    if require and not STATE.loaded:
        raise ImportError(f"lets_core: {REQUIRE_ENV}=1 but the compiled extension is not in use: {STATE.reason}")
    if require and torch.cuda.is_available():
        _require_cuda_kernels()
    return STATE


def _require_cuda_kernels() -> None:
    """With CUDA available, every op must run its compiled CUDA kernel (asked of the dispatcher,
    not of the build record, so a kernel that failed to register is caught too)."""
    missing = [op for op, keys in op_kernels().items() if keys["CUDA"] != "compiled"]
    if missing:
        built = "with" if STATE.build.get("with_cuda") else "without"
        raise ImportError(
            f"lets_core: {REQUIRE_ENV}=1 and CUDA is available, but lets_core._C (built {built} CUDA kernels) "
            f"has no compiled CUDA kernel for {', '.join(missing)}; rebuild on a machine with nvcc "
            f"(FORCE_CUDA=1 {REBUILD})")


def _library_damage() -> str | None:
    """Why the compiled library must not be loaded, or None: its size and SHA-256 are compared
    with those the build recorded (``DIGEST_FILE``), because loading a truncated
    shared library kills the interpreter (SIGBUS in the loader) before any exception can be caught.
    A build without the record (made before it existed) is loaded unchecked."""
    spec = importlib.util.find_spec(f"{__package__}._C")
    if spec is None or spec.origin is None:
        return None  # not built: the import below records that
    library = Path(spec.origin)
    record_path = library.with_name(DIGEST_FILE)
    if not record_path.is_file():
        STATE.warnings.append(f"no {DIGEST_FILE} beside {library.name}: its integrity was not checked")
        return None
    try:
        record = json.loads(record_path.read_text())
        size, digest = int(record["size"]), str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"lets_core._C's build record {str(record_path)!r} is unreadable ({exc}); rebuild: {REBUILD}"
    from .ops import _registry  # the op files are imported by now (lets_core.ops loads this module last)
    from .ops._schema_fingerprint import fingerprint

    built_for = record.get("op_schemas_sha256")  # absent in records written before it existed
    if built_for is not None and built_for != fingerprint(_registry.SCHEMAS):
        # Loading it would abort the interpreter (torch refuses a kernel whose signature differs
        # from the defined schema while the library loads, where nothing can catch it).
        return (f"lets_core._C at {str(library)!r} was built for other op schemas than this package defines "
                f"(its sources changed since the build); rebuild: {REBUILD}")
    actual = library.stat().st_size
    if actual != size:
        return (f"lets_core._C at {str(library)!r} is damaged: {actual} bytes where the build wrote {size}; "
                f"rebuild: {REBUILD}")
    if hashlib.sha256(library.read_bytes()).hexdigest() != digest:
        return f"lets_core._C at {str(library)!r} is damaged: its SHA-256 differs from the build's; rebuild: {REBUILD}"
    return None


DEVICE_KEYS = ("CPU", "CUDA")


def op_kernels() -> dict[str, dict[str, str]]:
    """For each lets_core op and device: ``compiled`` if lets_core._C registered a kernel for it
    (the dispatcher prefers it), otherwise ``reference`` (the pure-PyTorch fallback)."""
    table = {}
    from .ops import _registry  # late: the ops package imports this module

    for op in _registry.OPS:
        name = f"{_registry.NAMESPACE}::{op}"
        table[op] = {key: "compiled" if torch._C._dispatch_has_kernel_for_dispatch_key(name, key) else "reference"
                     for key in DEVICE_KEYS}
    return table


def _library_path() -> str | None:
    """The compiled library this package finds (loaded or not), or None when none is built."""
    try:
        spec = importlib.util.find_spec(f"{__package__}._C")
    except ValueError:  # blocked in sys.modules
        return None
    return None if spec is None or spec.origin is None else str(Path(spec.origin).resolve())


def extension_info() -> dict[str, Any]:
    """Versions, the compiled library's build facts (or why it is not in use), and per-op kernels."""
    state = load()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "threads": torch.get_num_threads(),
        # Which copy answered: with a checkout and an installed package both reachable, nothing said so.
        "package": str(Path(__file__).resolve().parent),
        "library": _library_path(),
        "extension_loaded": state.loaded,
        "extension_status": state.reason,
        "extension_warnings": list(state.warnings),
        "build": dict(state.build),
        "ops": op_kernels(),
    }
