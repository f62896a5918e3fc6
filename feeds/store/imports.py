"""The import log: the last import's outcome and how many imports ended each way.

Imports run in another process than the server (a timer, ``import --watch``), so what
``/healthz`` and ``/metrics`` report about them lives in the database (the ``meta`` table).
Recording an import is not a content write: the store version, and so every cached feed,
stays as it is.
"""
from __future__ import annotations

import json
from typing import NamedTuple

from sqlalchemy import select

from .access import Access
from .schema import meta

LAST_IMPORT, IMPORT_COUNTS = "last_import", "import_counts"


class ImportStatus(NamedTuple):
    """One finished import: when (Unix seconds), how long (seconds), ``ok`` or ``failed``, and
    its one-line summary (the error's text for a failed one)."""

    finished_ts: float
    duration_s: float
    result: str
    summary: str


class ImportLog(Access):
    def record_import(self, status: ImportStatus) -> None:
        """Keep ``status`` as the last import and count it, in one short transaction of its own."""
        with self._conn() as conn, conn.begin():
            raw = conn.execute(select(meta.c.value).where(meta.c.key == IMPORT_COUNTS).with_for_update()).scalar()
            counts = json.loads(raw) if raw else {}
            counts[status.result] = counts.get(status.result, 0) + 1
            for key, value in ((LAST_IMPORT, status._asdict()), (IMPORT_COUNTS, counts)):
                conn.execute(meta.delete().where(meta.c.key == key))
                conn.execute(meta.insert().values(key=key, value=json.dumps(value, sort_keys=True)))

    def last_import(self) -> ImportStatus | None:
        """The newest recorded import, or None if this index never recorded one."""
        with self._conn() as conn:
            raw = conn.execute(select(meta.c.value).where(meta.c.key == LAST_IMPORT)).scalar()
        return ImportStatus(**json.loads(raw)) if raw else None

    def import_counts(self) -> dict[str, int]:
        """Imports recorded so far by result (``ok``, ``failed``)."""
        with self._conn() as conn:
            raw = conn.execute(select(meta.c.value).where(meta.c.key == IMPORT_COUNTS)).scalar()
        return json.loads(raw) if raw else {}
