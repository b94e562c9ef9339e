"""The build record written beside the compiled library: ``_C.digest.json``.

Both builds write it: setup.py after compiling, and CMake as a post-build step
(``python lets_core/_build_record.py LIBRARY``). lets_core reads it before loading ``_C``
(``_extension._library_damage``): the size and SHA-256 catch a truncated library, whose load would
kill the interpreter (SIGBUS in the loader), and the op schemas' fingerprint catches a library
built for other schemas, whose load aborts it. A CMake build without a record of its own was
judged by an older setuptools build's record and refused as "damaged".

Standard library only, and the schema fingerprint is loaded by path: this runs at build time,
before the package can be imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

DIGEST_FILE = "_C.digest.json"
OPS_DIR = Path(__file__).resolve().parent / "ops"


def _op_schemas_sha256() -> str:
    spec = importlib.util.spec_from_file_location("lets_core_schema_fingerprint", OPS_DIR / "_schema_fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fingerprint(module.schemas_in_sources(OPS_DIR))


def write(library: Path) -> Path:
    """Write the record of ``library`` beside it; returns the record's path."""
    library = Path(library)
    data = library.read_bytes()
    record = {"file": library.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "op_schemas_sha256": _op_schemas_sha256()}
    path = library.parent / DIGEST_FILE
    path.write_text(json.dumps(record, indent=2))
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print(f"usage: python {Path(__file__).name} LIBRARY (the built lets_core._C file); got {argv}", file=sys.stderr)
        return 2
    print(f"lets_core: wrote {write(Path(argv[0]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
