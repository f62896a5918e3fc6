"""The article index: SQLite by default, PostgreSQL with the same code (SQLAlchemy Core).

The content files stay the source of truth; this index is rebuilt from them by
``feeds.importer``. Every write transaction bumps ``version``, which the server uses to
validate caches. Feed queries walk an index on (topic|provider, public, published_ts) and
read only the rows they return.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger, Boolean, Column, Connection, Index, Integer, MetaData, String, Table, Text,
    create_engine, event, func, select,
)
from sqlalchemy.engine import Engine

from .query import FeedQuery

SCHEMA_VERSION = "2"
metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))

articles = Table(
    "articles", metadata,
    Column("id", String(255), primary_key=True),
    Column("path", Text, nullable=False),
    Column("file_size", BigInteger, nullable=False),
    Column("file_mtime_ns", BigInteger, nullable=False),
    Column("file_sha", String(64), nullable=False),
    Column("public", Boolean, nullable=False),
    Column("published", Boolean, nullable=False),
    Column("duplicate_of", String(255)),
    Column("published_ts", BigInteger, nullable=False),
    Column("norm_url", Text, nullable=False),
    Column("provider_domain", String(255), nullable=False),
    Column("type", String(64), nullable=False),
    Column("quality", Integer),
    Column("heat", Integer),
    Column("search", Text, nullable=False),
    Column("topics", Text, nullable=False),   # JSON list of slugs
    Column("record", Text, nullable=False),   # JSON, the cleaned record
    Column("curated", Text, nullable=False),  # JSON list of the curated related items' normalised URLs
    Column("related", Text, nullable=False),  # JSON list of computed related article ids
    Index("ix_articles_public_time", "public", "published_ts", "id"),
    Index("ix_articles_provider_time", "provider_domain", "public", "published_ts", "id"),
    Index("ix_articles_norm_url", "norm_url"),
)

article_topics = Table(
    "article_topics", metadata,
    Column("topic_slug", String(255), nullable=False),
    Column("article_id", String(255), nullable=False),
    Column("public", Boolean, nullable=False),
    Column("published_ts", BigInteger, nullable=False),
    Index("ix_topic_time", "topic_slug", "public", "published_ts", "article_id"),
    Index("ix_topic_article", "article_id"),
)

article_urls = Table(
    "article_urls", metadata,
    Column("hash", String(64), nullable=False),
    Column("article_id", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Index("ix_urls_hash", "hash"),
    Index("ix_urls_article", "article_id"),
)

bad_files = Table(
    "bad_files", metadata,
    Column("path", Text, primary_key=True),
    Column("file_size", BigInteger, nullable=False),
    Column("file_mtime_ns", BigInteger, nullable=False),
    Column("line", Integer),
    Column("reason", Text, nullable=False),
)

topics = Table(
    "topics", metadata,
    Column("slug", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("data", Text, nullable=False),
)

providers = Table(
    "providers", metadata,
    Column("domain", String(255), primary_key=True),
    Column("name", Text, nullable=False),
    Column("data", Text, nullable=False),
)

clients = Table(
    "clients", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("key_id", String(32), nullable=False),  # which master key the client's secret derives from
    Column("revoked", Boolean, nullable=False, default=False),
)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@dataclass
class ArticleRow:
    """What feeds and the API need of one stored article."""

    id: str
    published_ts: int
    record: dict[str, Any]
    topics: list[str]
    related: list[str]
    public: bool

    @classmethod
    def from_row(cls, row: Any) -> ArticleRow:
        return cls(row.id, row.published_ts, json.loads(row.record), json.loads(row.topics),
                   json.loads(row.related), bool(row.public))


_ROW_COLUMNS = (articles.c.id, articles.c.published_ts, articles.c.record, articles.c.topics,
                articles.c.related, articles.c.public)


class Store:
    """One database. ``url`` is an SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True, **_engine_options(url))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._check_schema()
        self._memo: dict[str, tuple[str, Any]] = {}

    def _check_schema(self) -> None:
        """Refuse an index written by an incompatible version, with the way out."""
        found = self.get_meta("schema")
        if found is None:
            with self.engine.begin() as conn:
                set_meta(conn, "schema", SCHEMA_VERSION)
        elif found != SCHEMA_VERSION:
            raise RuntimeError(f"the index at {self.url} has schema {found}, this topicfeed needs {SCHEMA_VERSION}: "
                               "move it away and run `topicfeed import` again (content files are the source of truth)")

    def close(self) -> None:
        self.engine.dispose()

    def analyze(self) -> None:
        """Refresh the planner's statistics after a large change (SQLite has no autovacuum)."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction; commits with a new version or rolls back entirely."""
        with self.engine.begin() as conn:
            yield conn
            set_meta(conn, "version", secrets.token_hex(8))

    def version(self) -> str:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == "version")).scalar() or "empty"

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    # -- reads used by the importer -------------------------------------------------------

    def file_states(self) -> dict[str, tuple[int, int, str | None, str | None]]:
        """path -> (size, mtime_ns, sha or None, article id or None) for every indexed file."""
        with self.engine.connect() as conn:
            states = {
                r.path: (r.file_size, r.file_mtime_ns, r.file_sha, r.id)
                for r in conn.execute(select(articles.c.path, articles.c.file_size,
                                             articles.c.file_mtime_ns, articles.c.file_sha, articles.c.id))
            }
            for r in conn.execute(select(bad_files)):
                states.setdefault(r.path, (r.file_size, r.file_mtime_ns, None, None))
        return states

    def bad_files(self) -> list[tuple[str, int | None, str]]:
        with self.engine.connect() as conn:
            return [(r.path, r.line, r.reason) for r in conn.execute(select(bad_files).order_by(bad_files.c.path))]

    def iter_index_rows(self) -> Iterator[Any]:
        """Light columns of every article (dedup and related inputs)."""
        with self.engine.connect() as conn:
            yield from conn.execute(select(
                articles.c.id, articles.c.path, articles.c.published, articles.c.duplicate_of,
                articles.c.published_ts, articles.c.norm_url, articles.c.quality, articles.c.search,
                articles.c.topics, articles.c.curated, articles.c.related)).yield_per(5000)

    # -- reads used by feeds and the API ----------------------------------------------------

    def recent(self, scope: str, key: str | None, query: FeedQuery, offset: int = 0) -> list[ArticleRow]:
        """Newest public articles of all/topic/provider, filtered; reads only what it returns.

        Ids come first from a covering index (deep pages skip index entries, not records),
        then the returned rows are read by primary key.
        """
        filtered = query.min_quality is not None or query.min_heat is not None or query.type or query.q
        if scope == "topic":
            when, ident = article_topics.c.published_ts, article_topics.c.article_id
            stmt = select(ident).where(article_topics.c.topic_slug == key, article_topics.c.public.is_(True))
            if filtered:
                stmt = stmt.join(articles, articles.c.id == ident)
        else:
            when, ident = articles.c.published_ts, articles.c.id
            stmt = select(ident).where(articles.c.public.is_(True))
            if scope == "provider":
                stmt = stmt.where(articles.c.provider_domain == key)
        if query.min_quality is not None:
            stmt = stmt.where(articles.c.quality >= query.min_quality)
        if query.min_heat is not None:
            stmt = stmt.where(articles.c.heat >= query.min_heat)
        if query.type:
            stmt = stmt.where(articles.c.type == query.type)
        if query.q:
            escaped = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(articles.c.search.like(f"%{escaped}%", escape="\\"))
        stmt = stmt.order_by(when.desc(), ident).limit(query.limit).offset(offset)
        with self.engine.connect() as conn:
            ids = conn.execute(stmt).scalars().all()
            by_id = {r.id: ArticleRow.from_row(r)
                     for r in conn.execute(select(*_ROW_COLUMNS).where(articles.c.id.in_(ids)))} if ids else {}
        return [by_id[i] for i in ids]

    def article(self, article_id: str, *, public_only: bool = True) -> ArticleRow | None:
        stmt = select(*_ROW_COLUMNS).where(articles.c.id == article_id)
        if public_only:
            stmt = stmt.where(articles.c.public.is_(True))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return ArticleRow.from_row(row) if row else None

    def articles_by_ids(self, ids: Iterable[str]) -> dict[str, ArticleRow]:
        ids = list(ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:  # by primary key; `public` is checked here, not by the planner
            rows = conn.execute(select(*_ROW_COLUMNS).where(articles.c.id.in_(ids)))
            return {r.id: ArticleRow.from_row(r) for r in rows if r.public}

    def lookup(self, hash_prefix: str) -> list[tuple[ArticleRow, list[tuple[str, str]]]]:
        """Public articles having a URL whose hash starts with ``hash_prefix`` (lower-case hex)."""
        upper = hash_prefix + "g"  # every hex continuation sorts below 'g'
        with self.engine.connect() as conn:
            matches = conn.execute(
                select(article_urls.c.article_id).where(article_urls.c.hash >= hash_prefix, article_urls.c.hash < upper).distinct()
            ).scalars().all()
            if not matches:
                return []
            rows = [r for r in conn.execute(select(*_ROW_COLUMNS).where(articles.c.id.in_(matches))
                                            .order_by(articles.c.published_ts.desc(), articles.c.id)) if r.public]
            urls: dict[str, list[tuple[str, str]]] = {}
            for r in conn.execute(select(article_urls).where(article_urls.c.article_id.in_([r.id for r in rows]))
                                  .order_by(article_urls.c.article_id, article_urls.c.hash)):
                urls.setdefault(r.article_id, []).append((r.hash, r.url))
        return [(ArticleRow.from_row(r), urls.get(r.id, [])) for r in rows]

    def _per_version(self, name: str, compute: Callable[[], Any]) -> Any:
        """Aggregates (counts over 100k rows) are computed once per store version."""
        version = self.version()
        hit = self._memo.get(name)
        if hit is None or hit[0] != version:
            hit = (version, compute())
            self._memo[name] = hit
        return hit[1]

    def topics(self) -> list[dict[str, Any]]:
        """Every topic (taxonomy first, then names only seen in records) with its public count."""
        return self._per_version("topics", self._topics)

    def _topics(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            counts: dict[str, int] = dict(conn.execute(
                select(article_topics.c.topic_slug, func.count()).where(article_topics.c.public.is_(True))
                .group_by(article_topics.c.topic_slug)).all())
            return [
                {"slug": r.slug, "name": r.name, "data": json.loads(r.data), "count": counts.get(r.slug, 0)}
                for r in conn.execute(select(topics).order_by(topics.c.position, topics.c.slug))
            ]

    def topic_names(self) -> dict[str, str]:
        """slug -> display name (no counting: feeds need only the names)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(topics.c.slug, topics.c.name)).all())

    def topic(self, slug: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(topics).where(topics.c.slug == slug)).first()
        return {"slug": row.slug, "name": row.name, "data": json.loads(row.data)} if row else None

    def providers(self) -> list[dict[str, Any]]:
        """Every provider with its public count (organisation files first, then record-only ones)."""
        return self._per_version("providers", self._providers)

    def _providers(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            counts: dict[str, int] = dict(conn.execute(
                select(articles.c.provider_domain, func.count()).where(articles.c.public.is_(True))
                .group_by(articles.c.provider_domain)).all())
            return [
                {"domain": r.domain, "name": r.name, "data": json.loads(r.data), "count": counts.get(r.domain, 0)}
                for r in conn.execute(select(providers).order_by(providers.c.domain))
            ]

    def provider(self, domain: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(providers).where(providers.c.domain == domain)).first()
        return {"domain": row.domain, "name": row.name, "data": json.loads(row.data)} if row else None

    def stats(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(articles)).scalar() or 0
            public = conn.execute(select(func.count()).select_from(articles).where(articles.c.public.is_(True))).scalar() or 0
            bad = conn.execute(select(func.count()).select_from(bad_files)).scalar() or 0
        return {"articles": total, "public": public, "bad_files": bad}

    def newest_ts(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(articles.c.published_ts)).where(articles.c.public.is_(True))).scalar()


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Store a meta value inside an open write transaction."""
    conn.execute(meta.delete().where(meta.c.key == key))
    conn.execute(meta.insert().values(key=key, value=value))


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-8000")  # 8 MB page cache per connection: the VPS has 512 MB
    cur.close()
