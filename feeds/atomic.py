"""One way to replace a file: write a temporary sibling, fsync it, rename it over the target.

POSIX ``rename(2)`` is atomic within a file system, so a reader (or a crash) sees the old file
or the new one, never a mix. The temporary name starts with ``.`` and ends in ``.tmp``, so no
scan for ``*.md`` records or published documents ever picks it up.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _complete_temp(path: Path, data: bytes, mode: int) -> str:
    """A flushed temporary sibling of ``path`` holding ``data``; the caller renames or links it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (permission bits ``mode``); raises ``OSError``.

    The parent folder must exist. The data and the rename are flushed to disk before return,
    so an acknowledged write survives a power cut.
    """
    tmp = _complete_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def create_atomic(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Create ``path`` complete with ``data`` only if it does not exist yet; True if this call
    created it. A full temporary file is hard-linked to the name, and ``link(2)`` never replaces,
    so of several processes racing to create one file exactly one wins (the file system must
    support hard links). Raises ``OSError``."""
    if path.exists():
        return False
    tmp = _complete_temp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    _fsync_folder(path.parent)
    return True
