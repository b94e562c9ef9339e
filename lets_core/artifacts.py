"""Integrity digests and crash-safe saving of lets_core's artifact folders (bundles, Des-Nets, teachers).

A digest record holds the SHA-256 of every file of a saved folder and of every field of its JSON
description, so that a truncated copy, a flipped byte or a hand edit of a value that keeps tensor
shapes (``learngene.head_dim`` 16 -> 8) fails on load instead of silently rebuilding a different
network. It guards against damage and mistakes, not against a forger, who can recompute it.

:func:`save_folder_atomically` writes a folder into a temporary sibling and swaps it into place,
so a kill at any moment leaves either the complete old folder or the complete new one.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import BundleError

DIGEST_ALGORITHM = "sha256"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (tensor files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_sha256(value: Any) -> str:
    """Hex SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces).

    The value is first round-tripped through JSON, so what is hashed at save time (tuples, int
    dict keys) equals what is read back at load time (lists, str keys).
    """
    canonical = json.loads(json.dumps(value))
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def digest_record(files: Mapping[str, str | Path], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The digest of a saved folder: ``files`` maps each file's name in the folder to where it is
    now (it may still sit under a temporary name), ``fields`` are the JSON values to cover."""
    return {
        "algorithm": DIGEST_ALGORITHM,
        "files": {name: file_sha256(path) for name, path in sorted(files.items())},
        "fields": {name: json_sha256(value) for name, value in sorted(fields.items())},
    }


def verify_digest(directory: str | Path, record: Any, fields: Mapping[str, Any], *, source: str | Path,
                  required: Iterable[str], error: type[ValueError] = BundleError) -> None:
    """Check ``record`` (from :func:`digest_record`) against the files of ``directory`` and ``fields``.

    Args:
        source: the file that holds the record, named in errors.
        required: files the record must cover (a record that drops one is rejected too).
        error: the exception type raised on any mismatch.
    """
    verify_files(directory, record, source=source, required=required, error=error)
    verify_fields(record, fields, source=source, error=error)


def verify_files(directory: str | Path, record: Any, *, source: str | Path, required: Iterable[str],
                 error: type[ValueError] = BundleError) -> None:
    """The file part of :func:`verify_digest`: every recorded file exists and has its SHA-256."""
    source = str(source)
    _check_record_shape(record, source, error)
    files = record["files"]
    for name in required:
        if name not in files:
            raise error(f"the digest in {source!r} does not cover {name!r}; the file was written by another tool "
                        "or edited by hand, save the artifact again with lets_core")
    for name, expected in files.items():
        _verify_file(Path(directory), name, expected, source, error)


def verify_fields(record: Any, fields: Mapping[str, Any], *, source: str | Path,
                  error: type[ValueError] = BundleError) -> None:
    """The field part of :func:`verify_digest`: exactly the recorded fields, each unchanged."""
    source = str(source)
    _check_record_shape(record, source, error)
    recorded = record["fields"]
    for name in sorted(set(recorded) | set(fields)):
        if name not in fields:
            raise error(f"field {name!r} of {source!r} was removed after saving; save the artifact again with "
                        "lets_core instead of editing it")
        if name not in recorded:
            raise error(f"field {name!r} of {source!r} was added after saving; save the artifact again with "
                        "lets_core instead of editing it")
        actual = json_sha256(fields[name])
        if actual != recorded[name]:
            raise error(f"field {name!r} of {source!r} was changed after saving (its SHA-256 {actual[:16]}... differs "
                        f"from the recorded {recorded[name][:16]}...); save the artifact again with lets_core "
                        "instead of editing it")


def write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` as indented JSON, flushed to disk (the caller publishes it by a rename)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(value, indent=2))
        f.flush()
        os.fsync(f.fileno())


def read_json_object(path: str | Path, what: str, error: type[ValueError] = BundleError) -> dict[str, Any]:
    """Parse ``path`` as a UTF-8 JSON object, raising ``error`` (naming the file) for anything else."""
    path = Path(path)
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); {what}") from exc
    except json.JSONDecodeError as exc:
        raise error(f"{str(path)!r} is not valid JSON ({exc}); {what}") from exc
    except OSError as exc:
        raise error(f"{str(path)!r} cannot be read ({exc.strerror}); {what}") from exc
    if not isinstance(value, dict):
        raise error(f"{str(path)!r} holds a JSON {_json_type(value)}, not an object; {what}")
    return value


def save_folder_atomically(directory: str | Path, write: Callable[[Path], None], *, owned: Iterable[str],
                           what: str, error: type[ValueError] = BundleError) -> Path:
    """Create or replace the folder ``directory`` with what ``write(tmp)`` puts into ``tmp``.

    ``tmp`` is a fresh sibling ``.<name>.tmp-<pid>`` (same parent, so the final rename stays on one
    file system). Its files are fsynced, then it is swapped into place: atomically with Linux's
    ``renameat2(RENAME_EXCHANGE)``, elsewhere by renaming the old folder away and the new one in
    (a kill between the two leaves both complete folders as siblings). The old folder is deleted
    last. An existing ``directory`` may hold only the names in ``owned``: the swap deletes it, and
    files lets_core did not write are never deleted.

    Raises ``error`` naming the path when the target is a file, holds foreign files, or its parent
    cannot be created or written.
    """
    target = Path(os.path.realpath(directory))  # a symlinked target: replace what it points to
    owned = frozenset(owned)
    _check_target(target, owned, what, error)
    parent = target.parent
    _make_parent(parent, target, what, error)
    tmp = parent / f".{target.name}.tmp-{os.getpid()}"
    _remove(tmp)  # left by an earlier save of this process that was interrupted
    try:
        tmp.mkdir()
    except OSError as exc:
        raise error(f"cannot save the {what} to {str(target)!r}: its folder {str(parent)!r} is not writable "
                    f"({exc.strerror}); choose a writable location") from exc
    try:
        write(tmp)
        for path in tmp.iterdir():
            publish_mode(path)
        _fsync_tree(tmp)
        _swap_into_place(tmp, target)
    except OSError as exc:
        raise error(f"cannot save the {what} to {str(target)!r} ({exc.strerror or exc}); the previous content "
                    f"is unchanged") from exc
    finally:
        _remove(tmp)  # after a swap it holds the old folder; after a failure, the partial new one
    return Path(directory)


def publish_mode(path: str | Path) -> None:
    """Give a written file the permissions the umask gives any new file (0644 under umask 022):
    safetensors creates its files 0600, so weights beside 0644 JSON files were unreadable to the
    other users of a shared folder."""
    mask = os.umask(0)  # reading the umask means setting it; restored at once
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def fsync_file(path: str | Path) -> None:
    """Flush ``path``'s bytes to disk, so a rename that publishes it never exposes an empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (renames) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not support fsync on folders
        pass
    finally:
        os.close(fd)


def interrupted_save_hint(directory: str | Path) -> str:
    """A note for a "missing" error when an interrupted save left the folder's content beside it."""
    directory = Path(directory)
    try:
        prefixes = (f".{directory.name}.tmp-", f".{directory.name}.old-")
        leftovers = sorted(p.name for p in directory.parent.iterdir() if p.name.startswith(prefixes) and p.is_dir())
    except OSError:
        return ""
    if not leftovers:
        return ""
    return (f" (an interrupted save left {', '.join(repr(n) for n in leftovers[:3])} in "
            f"{str(directory.parent)!r}; a complete one can be renamed back to {directory.name!r})")


def _check_record_shape(record: Any, source: str, error: type[ValueError]) -> None:
    if not isinstance(record, dict):
        raise error(f"{source!r} has no digest record (written by an older lets_core or edited by hand); "
                    "save the artifact again with lets_core")
    if record.get("algorithm") != DIGEST_ALGORITHM:
        raise error(f"the digest in {source!r} uses algorithm {record.get('algorithm')!r}; this lets_core "
                    f"checks {DIGEST_ALGORITHM!r}")
    for part in ("files", "fields"):
        entries = record.get(part)
        if not (isinstance(entries, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in entries.items())):
            raise error(f"the digest in {source!r} has no valid {part!r} entry (a mapping of names to SHA-256 "
                        "hex strings); save the artifact again with lets_core")


def _verify_file(directory: Path, name: str, expected: str, source: str, error: type[ValueError]) -> None:
    # Only plain names: a record must not make the loader read files outside its folder.
    if Path(name).name != name or name in (".", ".."):
        raise error(f"the digest in {source!r} names {name!r}, which is not a file name of its folder")
    path = directory / name
    if not path.is_file():
        raise error(f"{str(path)!r} is missing; the digest in {source!r} covers it")
    actual = file_sha256(path)
    if actual != expected:
        raise error(f"{str(path)!r} is corrupted or truncated, or was edited or its save interrupted: its "
                    f"SHA-256 {actual[:16]}... differs from the {expected[:16]}... recorded in {source!r}")


def _json_type(value: Any) -> str:
    names = {list: "list", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _check_target(target: Path, owned: frozenset[str], what: str, error: type[ValueError]) -> None:
    if target.exists() and not target.is_dir():
        raise error(f"cannot save the {what} to {str(target)!r}: it is an existing file; pass a folder path "
                    f"(new, empty, or a previous {what} folder)")
    if target.is_dir():
        try:
            # An owned name that is not a regular file (a folder named bundle.json) is not ours either:
            # the swap would delete everything inside it.
            foreign = sorted(p.name for p in target.iterdir() if p.name not in owned or not p.is_file())
        except OSError as exc:
            raise error(f"cannot save the {what} to {str(target)!r}: the folder cannot be listed "
                        f"({exc.strerror})") from exc
        if foreign:
            shown = ", ".join(repr(n) for n in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise error(f"cannot save the {what} to {str(target)!r}: the folder holds files lets_core did not "
                        f"write there ({shown}), which replacing it would delete; pass a new or empty folder or "
                        f"a previous {what} folder")


def _make_parent(parent: Path, target: Path, what: str, error: type[ValueError]) -> None:
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise error(f"cannot save the {what} to {str(target)!r}: {str(ancestor)!r} is a file, not a folder")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot save the {what} to {str(target)!r}: folder {str(parent)!r} cannot be created "
                    f"({exc.strerror}); choose a writable location") from exc


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fsync_file(os.path.join(dirpath, name))
        fsync_dir(dirpath)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target``; an existing ``target`` ends up at ``tmp`` (the caller deletes it)."""
    if not target.is_dir():
        os.rename(tmp, target)
    elif not _exchange(tmp, target):
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        _remove(old)
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            os.rename(old, target)  # put the old folder back: the save failed, nothing changed
            raise
        os.rename(old, tmp)  # so that the caller's cleanup deletes it
    fsync_dir(target.parent)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):  # not glibc >= 2.28, or not Linux
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):  # kernel or file system lacks it
        return False
    raise OSError(code, os.strerror(code), str(b))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
