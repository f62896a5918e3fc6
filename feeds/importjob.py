"""One import at a time, and a record of each: what ``topicfeed import`` and ``import --watch`` run.

The lock is ``fcntl.flock`` on a file in the instance folder, so it holds across processes
(a timer's import and a watcher never sync at once) and is released by the kernel if the
holder dies. Each import's outcome goes to the store's import log (``/healthz``, ``/metrics``).
"""
from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .importer import MASS_REMOVAL_SHARE, MEMORY_BUDGET_MB, Progress, SyncReport, sync
from .store import ImportStatus, Store, WriterFenced

LOCK_FILE = "import.lock"
log = logging.getLogger("topicfeed.import")


@contextmanager
def import_lock(instance: Path) -> Iterator[None]:
    """Hold the instance's import lock, waiting (and saying so) while another process holds it."""
    with (instance / LOCK_FILE).open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another import is running on %s; waiting for it", instance)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_import(store: Store, roots: list[Path], instance: Path, progress: Progress | None = None,
               max_removal: float = MASS_REMOVAL_SHARE, memory_mb: float = MEMORY_BUDGET_MB) -> SyncReport:
    """``sync`` under the instance's import lock; the outcome (also a failure or a refusal, which
    is re-raised) is recorded in the store with its duration. ``max_removal`` is ``sync``'s
    mass-removal guard (the share of the index it may remove), ``memory_mb`` its memory budget
    (the ``import_memory_mb`` setting). Raises ``WriterFenced`` (the whole sync rolled back) when
    another writer takes the lease over meanwhile: ``store.fence`` stops it between statements."""
    with import_lock(instance):
        started = time.monotonic()
        try:
            report = sync(store, roots, progress=progress, max_removal=max_removal, memory_mb=memory_mb)
        except WriterFenced:  # another writer took over: this process records nothing more
            raise
        except Exception as exc:
            store.record_import(ImportStatus(time.time(), time.monotonic() - started, "failed", str(exc)[:500]))
            raise
        store.record_import(ImportStatus(time.time(), time.monotonic() - started, "ok", report.summary()))
        return report
