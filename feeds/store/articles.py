"""Articles with their topic links and lookup hashes: the feed and API reads, and the
importer's writes (rows, duplicates, related lists)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import JSON, Connection, Select, Table, bindparam, delete, func, insert, select, union_all, update

from ..query import FeedQuery
from .access import Access
from .changes import ChangeWrites
from .jsontext import dumps
from .schema import article_changes, article_topics, article_urls, articles, bad_files
from .spellings import SpellingWrites

BATCH = 1000  # rows per statement: bounded memory, and below every driver's parameter limit
ANALYZE_FIRST = 5000  # articles put in one PostgreSQL transaction before its first in-transaction ANALYZE


@dataclass
class ArticleRow:
    """What feeds and the API need of one stored article."""

    id: str
    published_ts: int  # Unix seconds
    record: dict[str, Any]
    topics: list[str]
    related: list[str]
    public: bool
    changed_ts: int | None = None  # when its entry last changed (Unix seconds; ``changes``), if tracked
    digest: str | None = None      # SHA-256 of what its entry shows (``changes._digest``), if tracked

    @classmethod
    def from_row(cls, row: Any) -> ArticleRow:
        """From a result row with the ``_ROW_COLUMNS``."""
        return cls(row.id, row.published_ts, row.record, row.topics, row.related, bool(row.public), row.changed_ts,
                   row.digest)

    @property
    def entry_version(self) -> str | None:
        """What identifies this article's entry as feeds show it (``entry_version``), if tracked."""
        return entry_version(self.digest, self.changed_ts)


def entry_version(digest: str | None, changed_ts: int | None) -> str | None:
    """An entry's version: its digest (record, topic names, provider name: ``changes._digest``)
    and the time it last changed (its default ``updated``); None for an untracked article (an
    index not re-imported since change tracking came), whose entries are never reused."""
    return f"{digest}@{changed_ts}" if digest is not None and changed_ts is not None else None


_ROW_COLUMNS = (articles.c.id, articles.c.published_ts, articles.c.record, articles.c.topics,
                articles.c.related, articles.c.public, article_changes.c.changed_ts, article_changes.c.digest)
_ROWS = articles.outerjoin(article_changes, article_changes.c.article_id == articles.c.id)


def _select_rows() -> Select[Any]:
    """The ``ArticleRow`` columns, with the article's change time when it is tracked."""
    return select(*_ROW_COLUMNS).select_from(_ROWS)


@dataclass
class NewArticle:
    """One parsed record as the importer stores it. ``url_hashes``: lookup hash -> URL."""

    id: str
    path: str
    file_size: int
    file_mtime_ns: int
    file_sha: str
    published: bool
    published_ts: int
    norm_url: str
    provider_domain: str
    type: str
    quality: int | None
    heat: int | None
    search: str
    topics: list[str]
    record: dict[str, Any] | str  # or its JSON text (``RawJSON``)
    curated: list[str]
    topic_names: list[str]  # how the record spells each of ``topics`` (``spellings``)
    provider_name: str      # how it spells its provider's name
    url_hashes: dict[str, str] = field(default_factory=dict)


class IndexRow(NamedTuple):
    """What deduplication needs of an article."""

    id: str
    path: str
    published: bool
    duplicate_of: str | None
    published_ts: int
    norm_url: str


class DocRow(NamedTuple):
    """What related-article ranking needs of a public article."""

    id: str
    norm_url: str
    search: str
    topics: list[str]
    published_ts: int
    quality: int | None
    curated: list[str]
    related: list[str]


_INDEX_COLUMNS = (articles.c.id, articles.c.path, articles.c.published, articles.c.duplicate_of,
                  articles.c.published_ts, articles.c.norm_url)
_DOC_COLUMNS = (articles.c.id, articles.c.norm_url, articles.c.search, articles.c.topics, articles.c.published_ts,
                articles.c.quality, articles.c.curated, articles.c.related)


def _index_row(r: Any) -> IndexRow:
    return IndexRow(r.id, r.path, bool(r.published), r.duplicate_of, r.published_ts, r.norm_url)


def _ids_statement(scope: str, filtered: bool) -> Select[Any]:
    """Ids of the public articles of all/topic/provider (``key``), newest first, ``limit`` from
    ``offset`` on (bound parameters); ``filtered``: joined to ``articles`` for more conditions."""
    if scope == "topic":
        when, ident = article_topics.c.published_ts, article_topics.c.article_id
        stmt = select(ident).where(article_topics.c.topic_slug == bindparam("key"), article_topics.c.public.is_(True))
        if filtered:
            stmt = stmt.join(articles, articles.c.id == ident)
    else:
        when, ident = articles.c.published_ts, articles.c.id
        stmt = select(ident).where(articles.c.public.is_(True))
        if scope == "provider":
            stmt = stmt.where(articles.c.provider_domain == bindparam("key"))
    return stmt.order_by(when.desc(), ident).limit(bindparam("limit")).offset(bindparam("offset"))


_UNFILTERED_IDS = {scope: _ids_statement(scope, False) for scope in ("all", "topic", "provider")}
# by primary key, apart from the ids: a join could make a planner read every change row
_VERSIONS = select(article_changes.c.article_id, article_changes.c.digest, article_changes.c.changed_ts).where(
    article_changes.c.article_id.in_(bindparam("ids", expanding=True)))
_ROWS_BY_IDS = _select_rows().where(articles.c.id.in_(bindparam("ids", expanding=True)))


class ArticleReads(Access):
    """Article reads for feeds, the API and the importer."""

    def recent(self, scope: str, key: str | None, query: FeedQuery, offset: int = 0) -> list[ArticleRow]:
        """Newest public articles of all/topic/provider, filtered; reads only what it returns.

        Ids come first from a covering index (deep pages skip index entries, not records),
        then the returned rows are read by primary key.
        """
        return [row for _, row in self.recent_reusing(scope, key, query, None, offset) if row is not None]

    def recent_reusing(self, scope: str, key: str | None, query: FeedQuery, reuse: Callable[[str, str], bool] | None,
                       offset: int = 0) -> list[tuple[str, ArticleRow | None]]:
        """``recent`` as ``(id, row)``, newest first, where ``row`` is None for the articles whose
        entry the caller already holds: ``reuse(id, entry version)`` said so (``entry_version``;
        untracked articles are always read). The versions are read right after the ids, so an
        entry kept under an older version is never taken for the current one; only the other
        rows (and their JSON) are read. ``reuse=None``: read every row."""
        with self._conn() as conn:
            ids = conn.execute(*self._recent_ids(scope, key, query, offset)).scalars().all()
            wanted = ids
            if ids and reuse is not None:
                kept = {r.article_id for r in conn.execute(_VERSIONS, {"ids": ids})
                        if (version := entry_version(r.digest, r.changed_ts)) and reuse(r.article_id, version)}
                wanted = [i for i in ids if i not in kept]
            by_id = {r.id: ArticleRow.from_row(r) for r in conn.execute(_ROWS_BY_IDS, {"ids": wanted})} if wanted else {}
        read = set(wanted)  # an article unpublished between the reads is left out
        return [(i, by_id.get(i)) for i in ids if i not in read or i in by_id]

    @staticmethod
    def _recent_ids(scope: str, key: str | None, query: FeedQuery, offset: int) -> tuple[Select[Any], dict[str, Any]]:
        """The statement (and its parameters) giving the ids of the public articles of
        all/topic/provider matching ``query``, newest first (from a covering index); an
        unfiltered one is built once per scope (building it took a tenth of a render)."""
        params = {"key": key, "limit": query.limit, "offset": offset}
        if not (query.min_quality is not None or query.min_heat is not None or query.type or query.q):
            return _UNFILTERED_IDS[scope], params
        stmt = _ids_statement(scope, True)
        if query.min_quality is not None:
            stmt = stmt.where(articles.c.quality >= query.min_quality)
        if query.min_heat is not None:
            stmt = stmt.where(articles.c.heat >= query.min_heat)
        if query.type:
            stmt = stmt.where(articles.c.type == query.type)
        if query.q:
            escaped = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(articles.c.search.like(f"%{escaped}%", escape="\\"))
        return stmt, params

    def article(self, article_id: str, *, public_only: bool = True) -> ArticleRow | None:
        """One article by id; unpublished and duplicate ones only with ``public_only=False``."""
        stmt = _select_rows().where(articles.c.id == article_id)
        if public_only:
            stmt = stmt.where(articles.c.public.is_(True))
        with self._conn() as conn:
            row = conn.execute(stmt).first()
        return ArticleRow.from_row(row) if row else None

    def article_version(self, article_id: str) -> str | None:
        """The SHA-256 (hex) of the record file an article was indexed from: its version tag
        (the ``ETag`` of curator writes); None when the article is not indexed."""
        with self._conn() as conn:
            return conn.execute(select(articles.c.file_sha).where(articles.c.id == article_id)).scalar()

    def articles_by_ids(self, ids: Iterable[str]) -> dict[str, ArticleRow]:
        """The public ones among ``ids``, by id."""
        ids = list(ids)
        if not ids:
            return {}
        with self._conn() as conn:  # by primary key; `public` is checked here, not by the planner
            rows = conn.execute(_select_rows().where(articles.c.id.in_(ids)))
            return {r.id: ArticleRow.from_row(r) for r in rows if r.public}

    def lookup(self, hash_prefix: str) -> list[tuple[ArticleRow, list[tuple[str, str]]]]:
        """Public articles having a URL whose hash starts with ``hash_prefix`` (lower-case hex),
        newest first, each with its (hash, URL) pairs."""
        upper = hash_prefix + "g"  # every hex continuation sorts below 'g'
        with self._conn() as conn:
            matches = conn.execute(
                select(article_urls.c.article_id).where(article_urls.c.hash >= hash_prefix, article_urls.c.hash < upper).distinct()
            ).scalars().all()
            if not matches:
                return []
            rows = [r for r in conn.execute(_select_rows().where(articles.c.id.in_(matches))
                                            .order_by(articles.c.published_ts.desc(), articles.c.id)) if r.public]
            urls: dict[str, list[tuple[str, str]]] = {}
            for r in conn.execute(select(article_urls).where(article_urls.c.article_id.in_([r.id for r in rows]))
                                  .order_by(article_urls.c.article_id, article_urls.c.hash)):
                urls.setdefault(r.article_id, []).append((r.hash, r.url))
        return [(ArticleRow.from_row(r), urls.get(r.id, [])) for r in rows]

    def url_hashes(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """article id -> the lookup hashes stored at import (sorted), for articles that have any."""
        ids = list(ids)
        out: dict[str, list[str]] = {}
        with self._conn() as conn:
            for start in range(0, len(ids), BATCH):
                for r in conn.execute(select(article_urls.c.article_id, article_urls.c.hash)
                                      .where(article_urls.c.article_id.in_(ids[start:start + BATCH]))
                                      .order_by(article_urls.c.article_id, article_urls.c.hash)):
                    out.setdefault(r.article_id, []).append(r.hash)
        return out

    def stats(self) -> dict[str, int]:
        """Counts: ``articles`` stored, ``public`` ones, ``bad_files``."""
        with self._conn() as conn:
            total = conn.execute(select(func.count()).select_from(articles)).scalar() or 0
            public = conn.execute(select(func.count()).select_from(articles).where(articles.c.public.is_(True))).scalar() or 0
            bad = conn.execute(select(func.count()).select_from(bad_files)).scalar() or 0
        return {"articles": total, "public": public, "bad_files": bad}

    def newest_ts(self) -> int | None:
        """Publication time (Unix seconds) of the newest public article."""
        with self._conn() as conn:
            return conn.execute(select(func.max(articles.c.published_ts)).where(articles.c.public.is_(True))).scalar()

    def duplicates(self) -> list[tuple[str, str]]:
        """(duplicate, kept) pairs, sorted."""
        with self._conn() as conn:
            return sorted((r.id, r.duplicate_of) for r in conn.execute(
                # a duplicate is never public: the condition lets the public index skip the others
                select(articles.c.id, articles.c.duplicate_of).where(articles.c.public.is_(False),
                                                                     articles.c.duplicate_of.is_not(None))))

    def iter_index_rows(self) -> Iterator[IndexRow]:
        """Every article's dedup columns (published, duplicate_of…), streamed."""
        with self._conn() as conn:
            for r in conn.execute(select(*_INDEX_COLUMNS)).yield_per(5000):
                yield _index_row(r)

    def public_docs_by_time(self, after: tuple[int, str] | None, limit: int) -> list[DocRow]:
        """Up to ``limit`` public articles' ranking inputs in (published_ts, id) order, starting
        after the key ``after``: a page of a stream that holds no cursor open between pages, so
        the caller may write in between (SQLite shares one connection per transaction)."""
        stmt = select(*_DOC_COLUMNS).where(articles.c.public.is_(True))
        if after is not None:
            ts, ident = after
            stmt = stmt.where((articles.c.published_ts > ts) | ((articles.c.published_ts == ts) & (articles.c.id > ident)))
        stmt = stmt.order_by(articles.c.published_ts, articles.c.id).limit(limit)
        with self._conn() as conn:
            return [DocRow(*r) for r in conn.execute(stmt)]

    def iter_docs(self, ids: list[str] | None = None) -> Iterator[DocRow]:
        """Ranking inputs of the given articles (all when None), streamed in batches."""
        with self._conn() as conn:
            if ids is None:
                for r in conn.execute(select(*_DOC_COLUMNS)).yield_per(5000):
                    yield DocRow(*r)
                return
            for start in range(0, len(ids), 5000):
                for r in conn.execute(select(*_DOC_COLUMNS).where(articles.c.id.in_(ids[start:start + 5000]))):
                    yield DocRow(*r)


def _insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (column name -> value, the same names in every row) with one driver
    ``executemany``, past SQLAlchemy's per-row parameter processing: at 100k records that
    processing cost more CPU than SQLite's own inserting. Values go to the driver as they are,
    except JSON columns, encoded here with ``dumps`` as the engine's serializer would; the
    statement is compiled for the connection's dialect (placeholders, PostgreSQL's JSON casts)."""
    json_columns = [c.name for c in table.columns if isinstance(c.type, JSON) and c.name in rows[0]]
    for row in rows:
        for name in json_columns:
            row[name] = dumps(row[name])
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        order = compiled.positiontup or []
        conn.exec_driver_sql(compiled.string, [tuple(row[name] for name in order) for row in rows])
    else:
        conn.exec_driver_sql(compiled.string, rows)


_NOT_COLUMNS = {"url_hashes", "topic_names", "provider_name"}  # NewArticle fields stored elsewhere
# The provider's name as the stored record spells it (``feeds.records``: always text).
_RECORD_PROVIDER_NAME = articles.c.record[("provider", "name")].as_string()


class ArticleWrites(ChangeWrites, SpellingWrites):
    """Article writes and the reads only the importer needs inside its transaction."""

    articles_put: int  # set by ``Transaction``: see ``_track_growth``
    analyze_at: int

    def put_articles(self, batch: list[NewArticle]) -> None:
        """Insert or replace articles with their topic links and lookup hashes; the duplicate
        mark and related list start empty (``set_duplicate``, ``set_related`` fill them)."""
        if not batch:
            return
        self.delete_articles([a.id for a in batch])  # also notes them as possibly changed
        rows, links, urls = [], [], []
        for a in batch:
            row = {k: v for k, v in vars(a).items() if k not in _NOT_COLUMNS}
            rows.append({**row, "public": a.published, "duplicate_of": None, "related": []})
            links += [{"topic_slug": s, "article_id": a.id, "public": a.published, "published_ts": a.published_ts,
                       "name": n} for s, n in zip(a.topics, a.topic_names, strict=True)]
            urls += [{"hash": h, "article_id": a.id, "url": u} for h, u in a.url_hashes.items()]
        _insert_rows(self.conn, articles, rows)
        self.count_spellings([(s, n) for a in batch for s, n in zip(a.topics, a.topic_names)],
                             [(a.provider_domain, a.provider_name) for a in batch], +1)
        if links:
            _insert_rows(self.conn, article_topics, links)
        if urls:
            _insert_rows(self.conn, article_urls, urls)
        self._track_growth(len(batch))

    def _track_growth(self, added: int) -> None:
        """On PostgreSQL, ANALYZE the article tables each time this transaction has doubled the
        articles it put (from ``ANALYZE_FIRST``: 8 times for 1M; each samples at most 30,000
        rows per table, 0.7 s seen at 100k on a loaded machine).

        An import is one transaction and its rows reach autovacuum's statistics only after the
        commit: until then the planner costs every statement for the tables as they were. With
        ``reltuples = 0`` (left by an aborted import that autovacuum then vacuumed) it took the id
        lookups of ``UPDATE articles ... WHERE id =`` for full scans of another index, 10-100 ms
        each at 100k rows. ANALYZE inside the transaction counts its own uncommitted rows."""
        if self.conn.dialect.name != "postgresql":
            return  # SQLite plans id lookups by the primary key whatever its statistics say
        self.articles_put += added
        if self.articles_put >= self.analyze_at:
            self.conn.exec_driver_sql("ANALYZE articles, article_topics, article_urls")
            self.analyze_at = 2 * self.articles_put

    def delete_articles(self, ids: list[str]) -> None:
        """Remove articles and their topic and URL rows."""
        self.note_articles(ids)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            # the rows' spellings come back from the delete itself: no extra read of the rows
            gone_providers = self.conn.execute(delete(articles).where(articles.c.id.in_(chunk)).returning(
                articles.c.provider_domain, _RECORD_PROVIDER_NAME)).all()
            gone_topics = self.conn.execute(delete(article_topics).where(article_topics.c.article_id.in_(chunk))
                                            .returning(article_topics.c.topic_slug, article_topics.c.name)).all()
            self.count_spellings(gone_topics, gone_providers, -1)
            self.conn.execute(delete(article_urls).where(article_urls.c.article_id.in_(chunk)))

    def article_ids(self) -> list[str]:
        """Every stored article id."""
        return list(self.conn.execute(select(articles.c.id)).scalars())

    def records(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """id -> stored record, for up to a few thousand ids."""
        return {r.id: r.record for r in self.conn.execute(select(articles.c.id, articles.c.record).where(articles.c.id.in_(ids)))}

    def norm_url(self, article_id: str) -> str | None:
        """The article's normalised URL, None if it is not stored."""
        return self.conn.execute(select(articles.c.norm_url).where(articles.c.id == article_id)).scalar()

    def set_topics(self, topics_by_id: dict[str, dict[str, str]]) -> None:
        """Give articles new topics (the taxonomy changed): per id, slug -> the record's spelling
        of it, in the record's order; relinks them. Only the articles whose slugs changed are
        rewritten and noted (their entries and feeds are all that can change; a renamed topic
        is noted by ``replace_taxonomy``): after an upgrade every record is re-resolved, at 1M
        a rewrite of every article row."""
        ids = list(topics_by_id)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            state = self.conn.execute(select(articles.c.id, articles.c.public, articles.c.published_ts, articles.c.topics)
                                      .where(articles.c.id.in_(chunk))).all()
            moved = [r.id for r in state if list(topics_by_id[r.id]) != r.topics]
            self.note_articles(moved)
            gone = self.conn.execute(delete(article_topics).where(article_topics.c.article_id.in_(chunk))
                                     .returning(article_topics.c.topic_slug, article_topics.c.name)).all()
            if moved:
                self.conn.execute(update(articles).where(articles.c.id == bindparam("b_id")).values(topics=bindparam("b_topics")),
                                  [{"b_id": i, "b_topics": list(topics_by_id[i])} for i in moved])
            links = [{"topic_slug": s, "article_id": r.id, "public": r.public, "published_ts": r.published_ts, "name": n}
                     for r in state for s, n in topics_by_id[r.id].items()]
            self.count_spellings(gone, (), -1)
            self.count_spellings([(s, n) for r in state for s, n in topics_by_id[r.id].items()], (), +1)
            if links:
                self.conn.execute(insert(article_topics), links)

    def index_rows(self, norm_urls: Iterable[str] | None = None) -> list[IndexRow]:
        """Dedup columns of every article, or of those with the given normalised URLs."""
        stmt = select(*_INDEX_COLUMNS)
        if norm_urls is not None:
            stmt = stmt.where(articles.c.norm_url.in_(sorted(norm_urls)))
        return [_index_row(r) for r in self.conn.execute(stmt)]

    def duplicate_urls(self) -> set[str]:
        """Normalised URLs that deduplication must look at: those held by more than one article
        and those of articles marked as duplicates (which may no longer be)."""
        shared = select(articles.c.norm_url).group_by(articles.c.norm_url).having(func.count() > 1)
        marked = select(articles.c.norm_url).where(articles.c.duplicate_of.is_not(None))
        return set(self.conn.execute(shared.union(marked)).scalars())

    def set_duplicate(self, article_id: str, duplicate_of: str | None, public: bool) -> None:
        """Mark (or unmark) an article as a URL duplicate of another, with its resulting visibility."""
        self.note_articles([article_id])
        self.conn.execute(update(articles).where(articles.c.id == article_id).values(duplicate_of=duplicate_of, public=public))
        self.conn.execute(update(article_topics).where(article_topics.c.article_id == article_id).values(public=public))

    def set_related(self, related: dict[str, list[str]]) -> None:
        """Replace the computed related ids of the given articles."""
        stmt = update(articles).where(articles.c.id == bindparam("b_id")).values(related=bindparam("b_related"))
        items = sorted(related.items())
        for start in range(0, len(items), BATCH):
            self.conn.execute(stmt, [{"b_id": i, "b_related": r} for i, r in items[start:start + BATCH]])

    def public_docs(self, ids: Iterable[str]) -> list[DocRow]:
        """Ranking inputs of the public ones among ``ids``."""
        return [DocRow(*r) for r in self.conn.execute(
            select(*_DOC_COLUMNS).where(articles.c.id.in_(sorted(ids)), articles.c.public.is_(True)))]

    def docs(self, ids: Iterable[str]) -> list[DocRow]:
        """Ranking inputs of those among ``ids`` that exist, public or not."""
        return [DocRow(*r) for r in self.conn.execute(select(*_DOC_COLUMNS).where(articles.c.id.in_(sorted(ids))))]

    def docs_near(self, anchors: Iterable[tuple[str | None, int]], limit: int, also: Iterable[str] = ()) -> list[DocRow]:
        """In one statement, the ranking inputs of the public articles among the ``limit``
        nearest on each side in time of every anchor (topic slug, or None for all articles;
        Unix seconds), plus the public ones among ``also``."""
        parts: list[Select[Any]] = []
        for slug, ts in sorted(set(anchors), key=lambda a: (a[0] or "", a[1])):
            if slug is None:
                base = select(articles.c.id.label("i"), articles.c.published_ts.label("t")).where(articles.c.public.is_(True))
            else:
                base = select(article_topics.c.article_id.label("i"), article_topics.c.published_ts.label("t")).where(
                    article_topics.c.topic_slug == slug, article_topics.c.public.is_(True))
            when = base.selected_columns.t
            for side in (base.where(when <= ts).order_by(when.desc()), base.where(when > ts).order_by(when)):
                sub = side.limit(limit).subquery()  # SQLite takes ORDER BY/LIMIT only inside a subquery of a UNION
                parts.append(select(sub.c.i))
        wanted = sorted(set(also))
        if wanted:
            parts.append(select(articles.c.id.label("i")).where(articles.c.id.in_(wanted)))
        if not parts:
            return []
        near = union_all(*parts).subquery()
        stmt = select(*_DOC_COLUMNS).where(articles.c.id.in_(select(near.c.i)), articles.c.public.is_(True))
        return [DocRow(*r) for r in self.conn.execute(stmt)]
