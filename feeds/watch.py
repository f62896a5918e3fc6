"""``topicfeed import --watch``: keep the index in step with the content roots as files change.

Events from ``watchdog`` are collected until the roots have been quiet for ``debounce``
seconds, so a ``git pull`` touching 500 files (or a checkout half-way through) is one import,
not 500 and not a half-finished tree. Before importing, each changed path is compared with the
index's file states: a file whose size and mtime are already indexed — what a curator write
leaves, since it indexes its record itself — is not a change, so the API's own writes never
start an import. Imports run through ``run_import`` (one at a time, across processes).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .importer import ImportRefused, SyncReport
from .importjob import run_import
from .recordfiles import RECORD_DIRS
from .store import FileState, Store

DATA_DIR = "_data"
log = logging.getLogger("topicfeed.watch")


def is_visible_folder(path: str, roots: list[Path]) -> bool:
    """A folder inside a root (or a root itself) that is not hidden (``.git/`` and the like)."""
    p = Path(path)
    for root in roots:
        try:
            rel = p.relative_to(root)
        except ValueError:
            continue
        return not any(part.startswith(".") for part in rel.parts)
    return False


def is_content_path(path: str, roots: list[Path]) -> bool:
    """A record file (``_news/*.md``, ``_archive/_news/*.md``) or anything under ``_data/`` of a root;
    hidden files (temporary files of atomic writes, ``.git/``) are not content."""
    p = Path(path)
    for root in roots:
        try:
            rel = p.relative_to(root)
        except ValueError:
            continue
        if any(part.startswith(".") for part in rel.parts):
            return False
        folder = rel.parent.as_posix()
        return rel.parts[:1] == (DATA_DIR,) or (folder in RECORD_DIRS and p.suffix == ".md")
    return False


@dataclass
class Burst:
    """Paths touched since the last import, and when the last event arrived (monotonic seconds)."""

    roots: list[Path]
    paths: set[str] = field(default_factory=set)
    last_event: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *paths: str, folder: bool = False) -> None:
        """Note touched paths; a ``folder`` (created, deleted or moved as a whole, which inotify
        reports as one event without its files) is noted as ``FOLDER/`` and expanded later."""
        if folder:
            hits = [p.rstrip("/") + "/" for p in paths if p and is_visible_folder(p, self.roots)]
        else:
            hits = [p for p in paths if p and is_content_path(p, self.roots)]
        if hits:
            with self.lock:
                self.paths.update(hits)
                self.last_event = time.monotonic()

    def take_if_quiet(self, debounce: float) -> set[str]:
        """The burst's paths once no event came for ``debounce`` seconds (then it starts afresh); else empty."""
        with self.lock:
            if not self.paths or time.monotonic() - self.last_event < debounce:
                return set()
            taken, self.paths = self.paths, set()
            return taken


class _Handler(FileSystemEventHandler):
    def __init__(self, burst: Burst) -> None:
        self.burst = burst

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed", "closed_no_write"):
            return
        if event.is_directory and event.event_type not in ("created", "deleted", "moved"):
            return  # a folder's mtime changes with every file event, which is reported on its own
        self.burst.add(str(event.src_path), str(getattr(event, "dest_path", "") or ""), folder=event.is_directory)


def expand_folders(paths: set[str], states: dict[str, FileState], roots: list[Path]) -> set[str]:
    """``paths`` with each ``FOLDER/`` entry replaced by the indexed files under it (they may be
    gone) and the content files now on disk under it (they may be new)."""
    files = {p for p in paths if not p.endswith("/")}
    for folder in (p for p in paths if p.endswith("/")):
        files.update(p for p in states if p.startswith(folder))
        if Path(folder).is_dir():
            files.update(str(f) for f in Path(folder).rglob("*") if f.is_file() and is_content_path(str(f), roots))
    return files


def real_changes(paths: set[str], states: dict[str, FileState]) -> dict[str, list[str]]:
    """Sort ``paths`` into ``added``, ``modified``, ``removed`` against the index's file states,
    leaving out files the index already holds as they are (size and mtime match) and vanished
    files it never held. Data files (``_data/``) are not in the file states: they count as
    modified whenever touched (the import compares the taxonomy itself)."""
    changes: dict[str, list[str]] = {"added": [], "modified": [], "removed": []}
    for path in sorted(paths):
        state = states.get(path)
        try:
            stat = Path(path).stat()
        except FileNotFoundError:
            if state is not None or f"/{DATA_DIR}/" in path:
                changes["removed"].append(path)
            continue
        if state is not None and (state.size, state.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            continue
        changes["added" if state is None and path.endswith(".md") and f"/{DATA_DIR}/" not in path else "modified"].append(path)
    return changes


def _import(store: Store, roots: list[Path], instance: Path, max_removal: float) -> None:
    try:
        _log_report(run_import(store, roots, instance, max_removal=max_removal))
    except ImportRefused as exc:  # e.g. a half-finished checkout: wait for the next quiet burst
        log.error("import refused, index unchanged: %s", exc)
    except (OSError, ValueError) as exc:  # a root vanished mid-checkout: the next burst retries
        log.error("import failed: %s", exc)


def watch(store: Store, roots: list[Path], instance: Path, debounce: float, stop: threading.Event,
          max_removal: float) -> None:
    """Import once, then on every quiet burst of real changes, until ``stop`` is set. Each import
    keeps the mass-removal guard (``max_removal``): a refused one is logged and the next burst
    tries again. Raises ``FileNotFoundError`` for a root that is not a directory."""
    roots = [r.absolute() for r in roots]  # as configured: the paths the index and curator writes use
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"content directory not found: {root}")
    burst = Burst(roots)
    observer = Observer()
    for root in roots:
        observer.schedule(_Handler(burst), str(root), recursive=True)
    observer.start()
    try:
        _import(store, roots, instance, max_removal)
        log.info("watching %s (quiet period %.1f s)", ", ".join(map(str, roots)), debounce)
        while not stop.wait(min(debounce / 4, 0.5)):
            paths = burst.take_if_quiet(debounce)
            if not paths:
                continue
            states = store.file_states()
            changes = real_changes(expand_folders(paths, states, roots), states)
            if not any(changes.values()):
                log.info("ignored %d change(s) the index already holds (curator writes)", len(paths))
                continue
            for kind, items in changes.items():
                for path in items:
                    log.info("%s %s", kind, path)
            _import(store, roots, instance, max_removal)
    finally:
        observer.stop()
        observer.join()


def _log_report(report: SyncReport) -> None:
    log.info("import: %s", report.summary())
    for error in report.skipped:
        log.warning("skipped %s", error)
