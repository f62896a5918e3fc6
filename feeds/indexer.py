"""Writing the index tables: article rows, topic and provider tables, URL duplicates and
related lists. Everything here runs inside the importer's one write transaction.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from .records import Article
from .related import Doc, RelatedIndex, Vocabulary
from .store import article_topics, article_urls, articles, dumps, providers, topics
from .taxonomy import Taxonomy, resolve_topic
from .urlnorm import normalize_url, url_hash

BATCH = 1000


def topic_slugs(names: list[str], resolver: dict[str, str]) -> list[str]:
    slugs: list[str] = []
    for name in names:
        slug = resolve_topic(name, resolver)
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
        if not isinstance(url, str):
            continue
        try:
            urls.add(normalize_url(url))
        except ValueError:
            continue
    return frozenset(urls)


class RowWriter:
    """Parse results streamed to the database in batches (bounded memory at 100k files)."""

    def __init__(self, conn: Connection, resolver: dict[str, str]) -> None:
        self.conn, self.resolver = conn, resolver
        self.rows: list[dict[str, Any]] = []
        self.topic_rows: list[dict[str, Any]] = []
        self.url_rows: list[dict[str, Any]] = []
        self.topic_names: dict[str, str] = {}
        self.provider_names: dict[str, str] = {}

    def add(self, article: Article, stat: os.stat_result, sha: str) -> None:
        slugs = topic_slugs(article.topic_names, self.resolver)
        for name in article.topic_names:  # not zip(names, slugs): two names may share a slug
            self.topic_names.setdefault(resolve_topic(name, self.resolver), name)
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
        delete_articles(self.conn, [r["id"] for r in self.rows])
        self.conn.execute(insert(articles), self.rows)
        if self.topic_rows:
            self.conn.execute(insert(article_topics), self.topic_rows)
        if self.url_rows:
            self.conn.execute(insert(article_urls), self.url_rows)
        self.rows, self.topic_rows, self.url_rows = [], [], []


def delete_articles(conn: Connection, ids: list[str]) -> None:
    """Remove articles and their topic and URL rows."""
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        for table, column in ((articles, articles.c.id), (article_topics, article_topics.c.article_id),
                              (article_urls, article_urls.c.article_id)):
            conn.execute(delete(table).where(column.in_(chunk)))


def taxonomy_fingerprint(taxonomy: Taxonomy) -> str:
    payload = dumps([[t.slug, t.name] for t in taxonomy.topics.values()])
    return hashlib.sha256(payload.encode()).hexdigest()


def write_taxonomy(conn: Connection, taxonomy: Taxonomy, parsed: RowWriter) -> None:
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


def reresolve_topics(conn: Connection, resolver: dict[str, str], skip: set[str]) -> None:
    """The taxonomy changed: map the topic names of every record not parsed in this sync again."""
    todo = [i for i in conn.execute(select(articles.c.id)).scalars() if i not in skip]
    for start in range(0, len(todo), BATCH):
        ids = todo[start:start + BATCH]
        batch = conn.execute(select(articles.c.id, articles.c.record, articles.c.public, articles.c.published_ts)
                             .where(articles.c.id.in_(ids))).all()
        updates, links = [], []
        for r in batch:
            slugs = topic_slugs(json.loads(r.record).get("topics", []), resolver)
            updates.append({"b_id": r.id, "b_topics": dumps(slugs)})
            links += [{"topic_slug": s, "article_id": r.id, "public": r.public, "published_ts": r.published_ts} for s in slugs]
        conn.execute(delete(article_topics).where(article_topics.c.article_id.in_(ids)))
        conn.execute(update(articles).where(articles.c.id == bindparam("b_id")).values(topics=bindparam("b_topics")), updates)
        if links:
            conn.execute(insert(article_topics), links)


def deduplicate(conn: Connection, rows: Sequence[Any]) -> tuple[list[tuple[str, str]], set[str]]:
    """Records whose normalised URLs collide are one article: keep the published one, then the
    earliest, then the first file name. Returns (duplicate, kept) pairs and the ids whose public
    state changed."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        groups[r.norm_url].append(r)
    duplicate_of: dict[str, str] = {}
    for members in groups.values():
        if len(members) > 1:
            members.sort(key=lambda r: (not r.published, r.published_ts, os.path.basename(r.path)))
            duplicate_of.update({m.id: members[0].id for m in members[1:]})
    changed = {r.id for r in rows if duplicate_of.get(r.id) != r.duplicate_of}
    for r in rows:
        if r.id in changed:
            public = bool(r.published) and r.id not in duplicate_of
            conn.execute(update(articles).where(articles.c.id == r.id)
                         .values(duplicate_of=duplicate_of.get(r.id), public=public))
            conn.execute(update(article_topics).where(article_topics.c.article_id == r.id).values(public=public))
    return sorted(duplicate_of.items()), changed


def refresh_derived(conn: Connection, touched: set[str]) -> list[tuple[str, str]]:
    """Deduplicate by URL, then refresh the related lists the changes may affect; returns the
    (duplicate, kept) pairs."""
    light = conn.execute(select(articles.c.id, articles.c.path, articles.c.published, articles.c.duplicate_of,
                                articles.c.published_ts, articles.c.norm_url)).all()
    pairs, flipped = deduplicate(conn, light)
    touched = touched | flipped
    duplicates = dict(pairs)
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
    return pairs


def existing_duplicates(conn: Connection) -> list[tuple[str, str]]:
    """(duplicate, kept) pairs already in the index, for syncs that change nothing."""
    return sorted(tuple(r) for r in conn.execute(
        select(articles.c.id, articles.c.duplicate_of).where(articles.c.duplicate_of.is_not(None))))


_LOCAL_NEIGHBOURHOOD = 150  # per topic and side in time: candidates for a single-record refresh
_DOC_COLUMNS = (articles.c.id, articles.c.norm_url, articles.c.search, articles.c.topics, articles.c.published_ts,
                articles.c.quality, articles.c.curated)


def _local_neighbours(conn: Connection, article_id: str) -> list[str] | None:
    """Related ids for one article, ranked among the articles nearest in time in its topics
    (the full import ranks against everything; this keeps a single write cheap at 100k)."""
    me = conn.execute(select(*_DOC_COLUMNS).where(articles.c.id == article_id, articles.c.public.is_(True))).first()
    if me is None:
        return None
    ids: set[str] = set()
    for slug in json.loads(me.topics) or [None]:
        if slug is None:
            base = select(articles.c.id.label("i"), articles.c.published_ts.label("t")).where(articles.c.public.is_(True))
        else:
            base = select(article_topics.c.article_id.label("i"), article_topics.c.published_ts.label("t")).where(
                article_topics.c.topic_slug == slug, article_topics.c.public.is_(True))
        when = base.selected_columns.t
        ids.update(conn.execute(base.where(when <= me.published_ts).order_by(when.desc()).limit(_LOCAL_NEIGHBOURHOOD)).scalars())
        ids.update(conn.execute(base.where(when > me.published_ts).order_by(when).limit(_LOCAL_NEIGHBOURHOOD)).scalars())
    ids.add(article_id)
    vocabulary = Vocabulary()
    docs = [Doc(r.id, r.norm_url, vocabulary.encode(r.search), tuple(json.loads(r.topics)), r.published_ts, r.quality,
                frozenset(json.loads(r.curated)))
            for r in conn.execute(select(*_DOC_COLUMNS).where(articles.c.id.in_(sorted(ids)), articles.c.public.is_(True)))]
    return RelatedIndex(docs).neighbours(article_id)


def refresh_local(conn: Connection, article_ids: set[str], norm_urls: set[str]) -> list[tuple[str, str]]:
    """After one record changed: deduplicate its URL groups, then refresh its related list and
    those of its new neighbours. Returns the (duplicate, kept) pairs of those groups."""
    group = conn.execute(select(articles.c.id, articles.c.path, articles.c.published, articles.c.duplicate_of,
                                articles.c.published_ts, articles.c.norm_url)
                         .where(articles.c.norm_url.in_(sorted(norm_urls)))).all()
    pairs, flipped = deduplicate(conn, group)
    stmt = update(articles).where(articles.c.id == bindparam("b_id")).values(related=bindparam("b_related"))
    todo = sorted(article_ids | flipped)
    done: set[str] = set()
    while todo:
        current = todo.pop(0)
        if current in done:
            continue
        done.add(current)
        neighbours = _local_neighbours(conn, current)
        if neighbours is None:
            continue
        conn.execute(stmt, [{"b_id": current, "b_related": dumps(neighbours)}])
        if current in article_ids:
            todo.extend(n for n in neighbours if n not in done)  # the new article may now rank for them
    return pairs
