"""Sync the index with content roots: parse what changed, report what is wrong, keep the rest.

One write transaction per sync, so a crash leaves the previous index serving. Unchanged files
(same size and mtime, or same SHA-256) are not parsed again. ``feeds.indexer`` writes the rows.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from .content import Override, find_record, scan_roots
from .errors import RecordError
from .indexer import (
    RowWriter, delete_articles, existing_duplicates, refresh_derived, refresh_local, reresolve_topics,
    taxonomy_fingerprint, write_taxonomy,
)
from .records import Article, parse_article
from .store import Store, articles, bad_files, dumps, set_meta
from .taxonomy import load_taxonomy

PARALLEL_THRESHOLD = 2000
PARSE_CHUNK = 250
ANALYZE_AFTER = 500  # changed records that make fresh planner statistics worth ~1 s
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


def _changed_files(files: dict[str, Path], states: dict, report: SyncReport) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Yield (id, path, stat) for files whose size or mtime differ from the index."""
    for article_id, path in files.items():
        try:
            stat = path.stat()
        except OSError as exc:
            report.skipped.append(RecordError(str(path), f"cannot read: {exc.strerror}"))
            continue
        prev = states.get(str(path))
        if prev and prev[0] == stat.st_size and prev[1] == stat.st_mtime_ns and prev[3] in (article_id, None):
            if prev[3] is not None:  # an unchanged bad file is reported as skipped again, not as unchanged
                report.unchanged += 1
            continue
        yield article_id, path, stat


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


def _parse_all(candidates: list, states: dict) -> Iterator[tuple]:
    """Parse on every core when there is enough work to pay for the worker processes.

    At most ``workers * 2`` chunks are in flight, so memory stays bounded however many
    files changed (the writer in this process is the slower side).
    """
    jobs = [(aid, path, stat, states[str(path)][2] if str(path) in states and states[str(path)][3] == aid else None)
            for aid, path, stat in candidates]
    workers = min(os.cpu_count() or 1, 4)
    if len(jobs) < PARALLEL_THRESHOLD or workers < 2:
        yield from map(_parse_one, jobs)
        return
    chunks = (jobs[i:i + PARSE_CHUNK] for i in range(0, len(jobs), PARSE_CHUNK))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.submit(_parse_chunk, chunk))
            if len(pending) >= workers * 2:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def sync(store: Store, roots: list[Path], progress: Progress | None = None) -> SyncReport:
    """Make the index match ``roots`` exactly (later roots override earlier ones)."""
    roots = [Path(r) for r in roots]
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"content directory not found: {root}")
    report = SyncReport()
    files, report.overrides = scan_roots(roots)
    taxonomy = load_taxonomy(roots)
    report.skipped += taxonomy.errors
    resolver = taxonomy.resolver()
    states = store.file_states()
    indexed_ids = {aid for (_, _, _, aid) in states.values() if aid}
    known_bad = {path: (line, reason) for path, line, reason in store.bad_files()}
    taxonomy_changed = store.get_meta("taxonomy") != taxonomy_fingerprint(taxonomy)

    candidates = list(_changed_files(files, states, report))
    with store.write() as conn:
        parsed = RowWriter(conn, resolver)
        changed: set[str] = set()
        results = _parse_all(candidates, states)
        for article_id, path, stat, sha, outcome in (progress(results, len(candidates)) if progress else results):
            prev = states.get(str(path))
            if outcome is None:  # touched, same bytes
                conn.execute(update(articles).where(articles.c.id == article_id)
                             .values(file_size=stat.st_size, file_mtime_ns=stat.st_mtime_ns))
                report.unchanged += 1
                continue
            if prev and prev[3] is None:
                conn.execute(delete(bad_files).where(bad_files.c.path == str(path)))
            if isinstance(outcome, RecordError):
                report.skipped.append(outcome)
                conn.execute(insert(bad_files).values(path=str(path), file_size=stat.st_size, file_mtime_ns=stat.st_mtime_ns,
                                                      line=outcome.line, reason=outcome.reason))
                if article_id in indexed_ids:
                    report.kept_previous.append(article_id)
                continue
            (report.updated if article_id in indexed_ids else report.added).append(article_id)
            changed.add(article_id)
            parsed.add(outcome, stat, sha)
        parsed.flush()
        # Bad files that did not change are still reported, with their stored reason.
        reported = {str(p) for _, p, _ in candidates}
        current_paths = {str(p) for p in files.values()}
        for path, (line, reason) in known_bad.items():
            if path in current_paths and path not in reported:
                report.skipped.append(RecordError(path, reason, line))
        stale_bad = [p for p in known_bad if p not in current_paths]
        if stale_bad:
            conn.execute(delete(bad_files).where(bad_files.c.path.in_(stale_bad)))
        report.removed = sorted(indexed_ids - set(files))
        delete_articles(conn, report.removed)
        if taxonomy_changed:
            reresolve_topics(conn, resolver, changed)
            set_meta(conn, "taxonomy", taxonomy_fingerprint(taxonomy))
        write_taxonomy(conn, taxonomy, parsed)
        if changed or report.removed or taxonomy_changed:
            report.duplicates = refresh_derived(conn, changed | set(report.removed))
        else:
            report.duplicates = existing_duplicates(conn)
        set_meta(conn, "roots", dumps([str(r.resolve()) for r in roots]))
    if len(report.added) + len(report.updated) + len(report.removed) > ANALYZE_AFTER:
        store.analyze()
    report.skipped.sort(key=lambda e: e.path)
    return report




def index_one(store: Store, roots: list[Path], article_id: str) -> SyncReport:
    """Index one record after a curator write, without scanning the tree: milliseconds at 100k
    articles. Its related list is ranked among its topics' neighbours in time; the next full
    ``sync`` ranks it against everything. Falls back to ``sync`` if the taxonomy changed."""
    roots = [Path(r) for r in roots]
    taxonomy = load_taxonomy(roots)
    if store.get_meta("taxonomy") != taxonomy_fingerprint(taxonomy):
        return sync(store, roots)
    report = SyncReport()
    path = find_record(roots, article_id)
    with store.write() as conn:
        old = conn.execute(select(articles.c.norm_url).where(articles.c.id == article_id)).scalar()
        writer = RowWriter(conn, taxonomy.resolver())
        urls = {old} if old else set()
        if path is None:
            if old:
                delete_articles(conn, [article_id])
                report.removed.append(article_id)
        else:
            data = path.read_bytes()
            article = parse_article(data, str(path), article_id)
            writer.add(article, path.stat(), hashlib.sha256(data).hexdigest())
            writer.flush()
            conn.execute(delete(bad_files).where(bad_files.c.path == str(path)))
            (report.updated if old else report.added).append(article_id)
            urls.add(article.norm_url)
        write_taxonomy(conn, taxonomy, writer)
        report.duplicates = refresh_local(conn, {article_id}, urls)
    return report
