"""A consistent copy of an SQLite index while it is in use: SQLite's online backup API."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def sqlite_path(url: str) -> Path | None:
    """The database file of an ``sqlite:///PATH`` URL; None for another database."""
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) else None


def copy_sqlite(source: Path, dest: Path) -> None:
    """Copy the database at ``source`` to a new file ``dest`` page by page
    (https://sqlite.org/backup.html): readers and writers may keep working meanwhile, and the
    copy is one committed state (WAL content included)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
