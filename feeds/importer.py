"""Sync the index with content roots: parse what changed, report what is wrong, keep the rest.

One write transaction per sync, so a crash leaves the previous index serving. Unchanged files
(same size and mtime, or same SHA-256) are not parsed again.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import json
import os
from collections import defaultdict, deque
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from .content import Override, scan_roots
from .errors import RecordError
from .records import Article, parse_article
from .related import Doc, RelatedIndex, Vocabulary
from .store import Store, article_topics, article_urls, articles, bad_files, dumps, providers, set_meta, topics
from .taxonomy import Taxonomy, load_taxonomy
from .text import slugify
from .urls import normalize_url, url_hash

BATCH = 1000
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


def _topic_slugs(names: list[str], resolver: dict[str, str]) -> list[str]:
    slugs: list[str] = []
    for name in names:
        slug = resolver.get(name.lower()) or slugify(name)
        if slug and slug not in slugs:
            slugs.append(slug)
    return slugs


def _hashes(article: Article) -> dict[str, str]:
    """lookup hash -> URL for every URL the article is reachable by."""
    out: dict[str, str] = {}
    for url in article.urls:
        try:
            out.setdefault(url_hash(normalize_url(url)), url)
        except ValueError:
            continue
    return out


def _row(article: Article, stat: os.stat_result, sha: str, topic_slugs: list[str]) -> dict[str, Any]:
    return {
        "id": article.id, "path": article.path, "file_size": stat.st_size, "file_mtime_ns": stat.st_mtime_ns,
        "file_sha": sha, "public": article.published, "published": article.published, "duplicate_of": None,
        "published_ts": int(article.published_at.timestamp()), "norm_url": article.norm_url,
        "provider_domain": article.provider_domain, "type": article.type, "quality": article.quality,
        "heat": article.heat, "search": f"{article.title}\n{article.record.get('excerpt') or ''}".lower(),
        "topics": dumps(topic_slugs), "record": dumps(article.record), "related": "[]",
        "curated": dumps(sorted(_curated_urls(article.record))),
    }


def _curated_urls(record: dict[str, Any]) -> frozenset[str]:
    urls = set()
    for item in record.get("related") or []:
        url = item.get("webUrl") or item.get("originalUrl") if isinstance(item, dict) else None
        try:
            urls.add(normalize_url(url))
        except (ValueError, AttributeError, TypeError):
            continue
    return frozenset(urls)


class _Parsed:
    """Parse results streamed to the database in batches (bounded memory at 100k files)."""

    def __init__(self, conn: Connection, resolver: dict[str, str]) -> None:
        self.conn, self.resolver = conn, resolver
        self.rows: list[dict[str, Any]] = []
        self.topic_rows: list[dict[str, Any]] = []
        self.url_rows: list[dict[str, Any]] = []
        self.topic_names: dict[str, str] = {}
        self.provider_names: dict[str, str] = {}

    def add(self, article: Article, stat: os.stat_result, sha: str) -> None:
        slugs = _topic_slugs(article.topic_names, self.resolver)
        for name, slug in zip(article.topic_names, slugs):
            self.topic_names.setdefault(slug, name)
        self.provider_names.setdefault(article.provider_domain, article.provider_name)
        row = _row(article, stat, sha, slugs)
        self.rows.append(row)
        self.topic_rows += [{"topic_slug": s, "article_id": article.id, "public": row["public"],
                             "published_ts": row["published_ts"]} for s in slugs]
        self.url_rows += [{"hash": h, "article_id": article.id, "url": u} for h, u in _hashes(article).items()]
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        ids = [r["id"] for r in self.rows]
        for table, column in ((articles, articles.c.id), (article_topics, article_topics.c.article_id),
                              (article_urls, article_urls.c.article_id)):
            self.conn.execute(delete(table).where(column.in_(ids)))
        self.conn.execute(insert(articles), self.rows)
        if self.topic_rows:
            self.conn.execute(insert(article_topics), self.topic_rows)
        if self.url_rows:
            self.conn.execute(insert(article_urls), self.url_rows)
        self.rows, self.topic_rows, self.url_rows = [], [], []


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
    taxonomy_changed = store.get_meta("taxonomy") != _taxonomy_fingerprint(taxonomy)

    candidates = list(_changed_files(files, states, report))
    with store.write() as conn:
        parsed = _Parsed(conn, resolver)
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
        for start in range(0, len(report.removed), BATCH):
            ids = report.removed[start:start + BATCH]
            for table, column in ((articles, articles.c.id), (article_topics, article_topics.c.article_id),
                                  (article_urls, article_urls.c.article_id)):
                conn.execute(delete(table).where(column.in_(ids)))
        if taxonomy_changed:
            _reresolve_topics(conn, resolver, changed)
            set_meta(conn, "taxonomy", _taxonomy_fingerprint(taxonomy))
        _write_taxonomy(conn, taxonomy, parsed)
        if changed or report.removed or taxonomy_changed:
            _finish(conn, report, changed | set(report.removed))
        set_meta(conn, "roots", dumps([str(r.resolve()) for r in roots]))
    if len(report.added) + len(report.updated) + len(report.removed) > ANALYZE_AFTER:
        store.analyze()
    report.skipped.sort(key=lambda e: e.path)
    return report


def _taxonomy_fingerprint(taxonomy: Taxonomy) -> str:
    payload = dumps([[t.slug, t.name] for t in taxonomy.topics.values()])
    return hashlib.sha256(payload.encode()).hexdigest()


def _write_taxonomy(conn: Connection, taxonomy: Taxonomy, parsed: _Parsed) -> None:
    """Taxonomy topics and providers, plus those that records name without a data file."""
    old_topics = dict(conn.execute(select(topics.c.slug, topics.c.name)).all())
    old_providers = dict(conn.execute(select(providers.c.domain, providers.c.name)).all())
    used_topics = set(conn.execute(select(article_topics.c.topic_slug).distinct()).scalars())
    used_domains = set(conn.execute(select(articles.c.provider_domain).distinct()).scalars())
    topic_names = {**old_topics, **parsed.topic_names}
    provider_names = {**old_providers, **parsed.provider_names}
    topic_rows = [{"slug": t.slug, "position": t.position, "name": t.name, "data": dumps(t.data)}
                  for t in taxonomy.topics.values()]
    topic_rows += [{"slug": s, "position": len(topic_rows), "name": topic_names.get(s, s), "data": "{}"}
                   for s in sorted(used_topics - set(taxonomy.topics))]
    provider_rows = [{"domain": p.domain, "name": p.name, "data": dumps(p.data)} for p in taxonomy.providers.values()]
    provider_rows += [{"domain": d, "name": provider_names.get(d, d), "data": "{}"}
                      for d in sorted(used_domains - set(taxonomy.providers))]
    conn.execute(delete(topics))
    conn.execute(delete(providers))
    if topic_rows:
        conn.execute(insert(topics), topic_rows)
    if provider_rows:
        conn.execute(insert(providers), provider_rows)


def _reresolve_topics(conn: Connection, resolver: dict[str, str], skip: set[str]) -> None:
    """The taxonomy changed: map the topic names of every record not parsed in this sync again."""
    todo = [i for i in conn.execute(select(articles.c.id)).scalars() if i not in skip]
    for start in range(0, len(todo), BATCH):
        ids = todo[start:start + BATCH]
        batch = conn.execute(select(articles.c.id, articles.c.record, articles.c.public, articles.c.published_ts)
                             .where(articles.c.id.in_(ids))).all()
        updates, links = [], []
        for r in batch:
            slugs = _topic_slugs(json.loads(r.record).get("topics", []), resolver)
            updates.append({"b_id": r.id, "b_topics": dumps(slugs)})
            links += [{"topic_slug": s, "article_id": r.id, "public": r.public, "published_ts": r.published_ts} for s in slugs]
        conn.execute(delete(article_topics).where(article_topics.c.article_id.in_(ids)))
        conn.execute(update(articles).where(articles.c.id == bindparam("b_id")).values(topics=bindparam("b_topics")), updates)
        if links:
            conn.execute(insert(article_topics), links)


def _deduplicate(conn: Connection, rows: list[Any], report: SyncReport) -> set[str]:
    """Records whose normalised URLs collide are one article: keep the published one, then the
    earliest, then the first file name. Returns the ids whose public state changed."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        groups[r.norm_url].append(r)
    duplicate_of: dict[str, str] = {}
    for members in groups.values():
        if len(members) > 1:
            members.sort(key=lambda r: (not r.published, r.published_ts, os.path.basename(r.path)))
            duplicate_of.update({m.id: members[0].id for m in members[1:]})
    report.duplicates = sorted(duplicate_of.items())
    changed = {r.id for r in rows if duplicate_of.get(r.id) != r.duplicate_of}
    for r in rows:
        if r.id in changed:
            public = bool(r.published) and r.id not in duplicate_of
            conn.execute(update(articles).where(articles.c.id == r.id)
                         .values(duplicate_of=duplicate_of.get(r.id), public=public))
            conn.execute(update(article_topics).where(article_topics.c.article_id == r.id).values(public=public))
    return changed


def _finish(conn: Connection, report: SyncReport, touched: set[str]) -> None:
    """Deduplicate by URL, then refresh the related lists the changes may affect."""
    light = conn.execute(select(articles.c.id, articles.c.path, articles.c.published, articles.c.duplicate_of,
                                articles.c.published_ts, articles.c.norm_url)).all()
    touched |= _deduplicate(conn, light, report)
    duplicates = dict(report.duplicates)
    public_ids = sorted(r.id for r in light if r.published and r.id not in duplicates)
    del light
    vocabulary = Vocabulary()
    docs: list[Doc] = []
    targets: set[str] = set()
    for start in range(0, len(public_ids), 5000):  # stream: only words are kept, not rows
        for r in conn.execute(select(articles.c.id, articles.c.norm_url, articles.c.search, articles.c.topics,
                                     articles.c.published_ts, articles.c.quality, articles.c.curated, articles.c.related)
                              .where(articles.c.id.in_(public_ids[start:start + 5000]))):
            docs.append(Doc(r.id, r.norm_url, vocabulary.encode(r.search), tuple(json.loads(r.topics)), r.published_ts, r.quality,
                               frozenset(json.loads(r.curated))))
            if r.id in touched or touched.intersection(json.loads(r.related)):
                targets.add(r.id)
    index = RelatedIndex(docs)
    del docs
    if len(targets) * 5 > len(public_ids):
        targets = set(public_ids)
    else:
        for i in list(targets):  # a changed article's new neighbours may now rank it higher
            targets.update(index.neighbours(i))
    stmt = update(articles).where(articles.c.id == bindparam("b_id")).values(related=bindparam("b_related"))
    ordered = sorted(targets)
    for start in range(0, len(ordered), BATCH):
        conn.execute(stmt, [{"b_id": i, "b_related": dumps(index.neighbours(i))} for i in ordered[start:start + BATCH]])
