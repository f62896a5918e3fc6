"""Sync the index with content roots: parse what changed, report what is wrong, keep the rest.

``sync`` first diffs the tree against the index's file states (``diff_tree``: no parsing),
then applies the difference in one write transaction, so a crash leaves the previous index
serving. Unchanged files (same size and mtime, or same SHA-256) are not parsed again.
``feeds.indexer`` builds the rows, taxonomy tables, duplicates and related lists.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RecordError
from .indexer import RowWriter, refresh_derived, refresh_local, reresolve_topics, taxonomy_fingerprint, write_taxonomy
from .recordfiles import Override, find_record, scan_roots
from .records import Article, parse_article
from .store import BadFile, FileState, Store, Transaction, dumps
from .taxonomy import Taxonomy, load_taxonomy

PARALLEL_THRESHOLD = 2000
PARSE_CHUNK = 250
ANALYZE_AFTER = 500  # changed records that make fresh planner statistics worth ~1 s
MASS_REMOVAL_SHARE = 0.5  # default share of the index an import may remove without being told to
Progress = Callable[[Iterable[Any], int], Iterable[Any]]


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[RecordError] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, id of the kept record)
    overrides: list[Override] = field(default_factory=list)
    kept_previous: list[str] = field(default_factory=list)  # ids whose new file is bad; old version serves

    def summary(self) -> str:
        return (f"added {len(self.added)}, updated {len(self.updated)}, unchanged {self.unchanged}, "
                f"removed {len(self.removed)}, skipped {len(self.skipped)}, duplicates {len(self.duplicates)}")


class ImportRefused(Exception):
    """An import that looks like an operator mistake (a missing or empty root, or one that would
    remove much of the index); nothing was changed. The message says what to do instead."""


def check_roots(roots: list[Path]) -> dict[str, Path]:
    """The record files of ``roots`` (id -> path); ``ImportRefused`` for a root that is not a
    folder, or roots that hold no record at all (an import would empty the index)."""
    for root in roots:
        if not root.is_dir():
            raise ImportRefused(f"content directory not found: {root}")
    files, _ = scan_roots(roots)
    if not files:
        raise ImportRefused(f"no record files (_news/*.md or _archive/_news/*.md) under {', '.join(map(str, roots))}: "
                            "is this the content root (the folder that holds _news/)?")
    return files


def guard_mass_removal(indexed: int, removed: int, share: float) -> None:
    """Refuse to remove more than ``share`` (0..1) of ``indexed`` articles: usually a wrong or
    half-mounted folder. ``share`` >= 1 disables the guard."""
    if indexed and share < 1 and removed > indexed * share:
        raise ImportRefused(f"this import would remove {removed} of {indexed} indexed articles "
                            f"(more than {share:.0%}); check the content folders, or pass --allow-mass-removal")


def _die_with_parent() -> None:
    """Pool initializer: ask Linux to SIGKILL this worker when its parent dies (prctl
    PR_SET_PDEATHSIG), so a killed import leaves no parse worker behind; elsewhere a no-op."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG (linux/prctl.h)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


@dataclass
class TreeDiff:
    """What differs between the content tree and the index, before anything is parsed."""

    changed: list[tuple[str, Path, os.stat_result]]  # (id, file, stat): size or mtime differ
    removed: list[str]        # indexed ids with no file any more
    stale_bad: list[str]      # bad-file paths that are gone
    still_bad: list[RecordError]  # unchanged bad files, reported again with their stored reason


def diff_tree(files: dict[str, Path], states: dict[str, FileState], bad: list[BadFile],
              report: SyncReport) -> TreeDiff:
    """Compare ``files`` (id -> path) with the index; unreadable files and unchanged ones
    are counted in ``report`` on the way."""
    changed = []
    for article_id, path in files.items():
        try:
            stat = path.stat()
        except OSError as exc:
            report.skipped.append(RecordError(str(path), f"cannot read: {exc.strerror}"))
            continue
        prev = states.get(str(path))
        if prev and prev.size == stat.st_size and prev.mtime_ns == stat.st_mtime_ns and prev.article_id in (article_id, None):
            if prev.article_id is not None:  # an unchanged bad file is reported as skipped again, not as unchanged
                report.unchanged += 1
            continue
        changed.append((article_id, path, stat))
    indexed_ids = {s.article_id for s in states.values() if s.article_id}
    current_paths = {str(p) for p in files.values()}
    reparsed = {str(p) for _, p, _ in changed}
    return TreeDiff(
        changed=changed, removed=sorted(indexed_ids - set(files)),
        stale_bad=[b.path for b in bad if b.path not in current_paths],
        still_bad=[RecordError(b.path, b.reason, b.line) for b in bad if b.path in current_paths and b.path not in reparsed],
    )


def _parse_one(job: tuple[str, Path, os.stat_result, str | None]) -> tuple[str, Path, os.stat_result, str, Article | RecordError | None]:
    """Read and parse one file; ``None`` when its bytes match ``known_sha`` (only touched)."""
    article_id, path, stat, known_sha = job
    try:
        data = path.read_bytes()
    except OSError as exc:
        return article_id, path, stat, "", RecordError(str(path), f"cannot read: {exc.strerror}")
    sha = hashlib.sha256(data).hexdigest()
    if sha == known_sha:
        return article_id, path, stat, sha, None
    try:
        return article_id, path, stat, sha, parse_article(data, str(path), article_id)
    except RecordError as exc:
        return article_id, path, stat, sha, exc


def _parse_chunk(jobs: list[tuple[str, Path, os.stat_result, str | None]]) -> list[tuple]:
    return [_parse_one(job) for job in jobs]


def _parse_all(candidates: list, states: dict[str, FileState]) -> Iterator[tuple]:
    """Parse on every core when there is enough work to pay for the worker processes.

    At most ``workers * 2`` chunks are in flight, so memory stays bounded however many
    files changed (the writer in this process is the slower side).
    """
    jobs = []
    for aid, path, stat in candidates:
        prev = states.get(str(path))
        jobs.append((aid, path, stat, prev.sha if prev and prev.article_id == aid else None))
    workers = min(os.cpu_count() or 1, 4)
    if len(jobs) < PARALLEL_THRESHOLD or workers < 2:
        yield from map(_parse_one, jobs)
        return
    chunks = (jobs[i:i + PARSE_CHUNK] for i in range(0, len(jobs), PARSE_CHUNK))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_die_with_parent) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.submit(_parse_chunk, chunk))
            if len(pending) >= workers * 2:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


class _DryRun(Exception):
    """Raised inside the transaction of a dry run, so the database rolls everything back."""


@contextmanager
def _transaction(store: Store, dry_run: bool) -> Iterator[Transaction]:
    """``store.write()``, rolled back at the end when ``dry_run``."""
    try:
        with store.write() as tx:
            yield tx
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


def sync(store: Store, roots: list[Path], progress: Progress | None = None,
         max_removal: float = MASS_REMOVAL_SHARE, dry_run: bool = False) -> SyncReport:
    """Make the index match ``roots`` exactly (later roots override earlier ones).

    Raises ``ImportRefused`` (nothing changed) for a missing root, roots without any record,
    or when more than ``max_removal`` (a share, 0..1; >= 1 allows anything) of the indexed
    articles would be removed. ``dry_run`` reports what would change and rolls it all back.
    """
    roots = [Path(r) for r in roots]
    check_roots(roots)
    report = SyncReport()
    files, report.overrides = scan_roots(roots)
    taxonomy = load_taxonomy(roots)
    report.skipped += taxonomy.errors
    states = store.file_states()
    indexed_ids = {s.article_id for s in states.values() if s.article_id}
    taxonomy_changed = store.get_meta("taxonomy") != taxonomy_fingerprint(taxonomy)
    diff = diff_tree(files, states, store.bad_files(), report)
    guard_mass_removal(len(indexed_ids), len(diff.removed), max_removal)
    report.skipped += diff.still_bad
    report.removed = diff.removed
    resolver = taxonomy.resolver()

    with _transaction(store, dry_run) as tx:
        parsed = RowWriter(tx, resolver)
        changed: set[str] = set()
        results = _parse_all(diff.changed, states)
        for article_id, path, stat, sha, outcome in (progress(results, len(diff.changed)) if progress else results):
            if outcome is None:  # touched, same bytes
                tx.touch_file(article_id, stat.st_size, stat.st_mtime_ns)
                report.unchanged += 1
            elif isinstance(outcome, RecordError):
                report.skipped.append(outcome)
                tx.set_bad_file(str(path), stat.st_size, stat.st_mtime_ns, outcome.line, outcome.reason)
                if article_id in indexed_ids:
                    report.kept_previous.append(article_id)
            else:
                prev = states.get(str(path))
                if prev and prev.article_id is None:  # a bad file that is now fixed
                    tx.forget_bad_files([str(path)])
                (report.updated if article_id in indexed_ids else report.added).append(article_id)
                changed.add(article_id)
                parsed.add(outcome, stat, sha)
        parsed.flush()
        tx.forget_bad_files(diff.stale_bad)
        tx.delete_articles(diff.removed)
        if taxonomy_changed:
            reresolve_topics(tx, resolver, changed)
            tx.set_meta("taxonomy", taxonomy_fingerprint(taxonomy))
        write_taxonomy(tx, taxonomy, parsed)
        if changed or diff.removed or taxonomy_changed:
            report.duplicates = refresh_derived(tx, changed | set(diff.removed))
        else:
            report.duplicates = tx.duplicates()
        tx.set_meta("roots", dumps([str(r.resolve()) for r in roots]))
    if not dry_run and len(report.added) + len(report.updated) + len(report.removed) > ANALYZE_AFTER:
        store.analyze()
    report.skipped.sort(key=lambda e: e.path)
    return report


def index_one(store: Store, roots: list[Path], article_id: str) -> SyncReport:
    """Index one record after its file changed, in its own transaction (see ``index_record``);
    falls back to ``sync`` if the taxonomy changed."""
    roots = [Path(r) for r in roots]
    taxonomy = load_taxonomy(roots)
    if store.get_meta("taxonomy") != taxonomy_fingerprint(taxonomy):
        return sync(store, roots, max_removal=1.0)
    with store.write() as tx:
        return index_record(tx, roots, taxonomy, article_id)


def taxonomy_current(store: Store, taxonomy: Taxonomy) -> bool:
    """Whether the index was built with this taxonomy (else only a full ``sync`` is right)."""
    return store.get_meta("taxonomy") == taxonomy_fingerprint(taxonomy)


def index_record(tx: Transaction, roots: list[Path], taxonomy: Taxonomy, article_id: str) -> SyncReport:
    """Index one record inside ``tx`` without scanning the tree: milliseconds at 100k articles.
    Its related list is ranked among its topics' neighbours in time; the next full ``sync``
    ranks it against everything. Raises ``RecordError`` for an invalid file (the caller's
    transaction then rolls back)."""
    report = SyncReport()
    path = find_record(roots, article_id)
    old = tx.norm_url(article_id)
    writer = RowWriter(tx, taxonomy.resolver())
    urls = {old} if old else set()
    if path is None:
        if old:
            tx.delete_articles([article_id])
            report.removed.append(article_id)
    else:
        data = path.read_bytes()
        article = parse_article(data, str(path), article_id)
        writer.add(article, path.stat(), hashlib.sha256(data).hexdigest())
        writer.flush()
        tx.forget_bad_files([str(path)])
        (report.updated if old else report.added).append(article_id)
        urls.add(article.norm_url)
    write_taxonomy(tx, taxonomy, writer)
    report.duplicates = refresh_local(tx, {article_id}, urls)
    return report
