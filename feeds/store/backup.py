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
    copy is one committed state (WAL content included). The copy's writer lease is free (as the
    migration made it): it names the writer running on ``source``, which runs on no restore of
    the copy (``feeds.store.lease``: a restore elsewhere would wait for that row to go stale)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
            with dst:  # an index from before the lease (revision 0008) has no such table
                if dst.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'writer_lease'").fetchone():
                    dst.execute("UPDATE writer_lease SET holder = '', location = '', renewed_ms = 0, expires_ms = 0")
        finally:
            dst.close()
    finally:
        src.close()
