"""One way to replace a file: write a temporary sibling, fsync it, rename it over the target.

POSIX ``rename(2)`` is atomic within a file system, so a reader (or a crash) sees the old file
or the new one, never a mix. The temporary name starts with ``.`` and ends in ``.tmp``, so no
scan for ``*.md`` records or published documents ever picks it up.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (permission bits ``mode``); raises ``OSError``.

    The parent folder must exist. The data and the rename are flushed to disk before return,
    so an acknowledged write survives a power cut.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
