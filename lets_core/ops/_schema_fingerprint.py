"""The fingerprint of the op schemas a compiled library was built for (standard library only:
setup.py loads this file by path, before the package can be imported).

``lets_core._C`` registers its kernels while it is being loaded. When a kernel's C++ signature no
longer matches the schema the Python op files define (an op changed, the library not rebuilt),
torch aborts the whole process inside that load, where no exception can be caught. So setup.py
records the schemas' fingerprint beside the library (``_C.digest.json``), and lets_core compares it
with the schemas it defined before it loads the library.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

# How every op file defines its op: _registry.define("name(args) -> result", ...).
_DEFINE = re.compile(r'_registry\.define\(\s*"([^"]+)"')


def fingerprint(schemas: list[str]) -> str:
    """SHA-256 of the schema strings, whatever their order."""
    return hashlib.sha256("\n".join(sorted(schemas)).encode()).hexdigest()


def schemas_in_sources(ops_dir: Path) -> list[str]:
    """The schemas the op files in ``ops_dir`` (its public modules, as lets_core.ops imports them)
    define, read from their source text."""
    return [m for f in sorted(Path(ops_dir).glob("[!_]*.py")) for m in _DEFINE.findall(f.read_text())]
