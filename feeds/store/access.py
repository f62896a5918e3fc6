"""How table families reach the database: a store reads on a fresh connection per call,
a write transaction reads and writes on its one connection."""
from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection


class Access:
    """Base of the per-table mixins; ``_conn()`` gives the connection to run a statement on."""

    def _conn(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError


class WriteAccess(Access):
    """Base of the write mixins: they run inside ``Store.write()`` on ``self.conn``."""

    conn: Connection
