"""Reading IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or raw, with validation.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values. The header says exactly how long the payload
must be, so a truncated or padded file is detected before any value is used.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError

# IDX type code -> numpy dtype (big-endian where it matters).
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or uncompressed) into an array of its declared shape.

    Raises:
        DatasetError: the file is unreadable, not IDX, truncated, padded, or not ``expect_ndim``-D.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(f"{str(path)!r} is truncated: {len(raw)} bytes, an IDX header needs at least 4")
    zero, type_code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or type_code not in _IDX_TYPES:
        raise DatasetError(f"{str(path)!r} is not an IDX file (magic bytes {raw[:4].hex()}; expected "
                           f"0000 followed by a type code in {[hex(t) for t in _IDX_TYPES]})")
    if expect_ndim is not None and ndim != expect_ndim:
        raise DatasetError(f"{str(path)!r} holds a {ndim}-D array; {expect_ndim}-D was expected here")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{str(path)!r} is truncated inside its header ({len(raw)} of {header} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header declares"
        raise DatasetError(f"{str(path)!r} is {state}: header declares shape {tuple(dims)} "
                           f"({expected} bytes in all) but the data holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when the name ends in ``.gz``.

    Used to build small test fixtures and to export subsets in the standard format.
    """
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise DatasetError(f"write_idx writes uint8 arrays only, got dtype {array.dtype}")
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DatasetError(f"{str(path)!r} does not exist") from exc
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"{str(path)!r} is corrupted or truncated (gzip: {exc}); "
                           "reinstall or re-download the dataset") from exc
