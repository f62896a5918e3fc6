"""Per-feed change tracking: for every feed (all, each topic, each provider) a version and the
time its content last changed, and for every article the time its content last changed.

Why: a feed's ``Last-Modified`` must advance whenever its bytes do — also when an older-dated
article is added, an entry is edited or one is removed (RFC 9110 §8.8.2: a reader revalidating
with ``If-Modified-Since`` alone must not get 304 then). The newest entry's date cannot say
that; the store can, because every article write goes through a ``Transaction``.

How: the article writes (``put_articles``, ``delete_articles``, ``set_topics``,
``set_duplicate``) and taxonomy writes note what they touched; when the transaction commits,
``settle_changes`` compares each noted article's entry digest (its record and topic names) and
feed membership with what was stored, and bumps exactly the feeds whose entries changed. A
write that changes nothing (the same record saved again) bumps nothing.

Times are Unix seconds. A feed's time strictly increases with each change (the previous time
+ 1 s when two changes fall in one second), so ``If-Modified-Since``, which has one-second
resolution, sees every change. A feed or article first seen takes its newest entry's date
(capped at now), so importing the same tree twice gives byte-identical feeds.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from sqlalchemy import Column, Index, MetaData, Select, String, Table, bindparam, delete, func, insert, select, update

from .access import Access, WriteAccess
from .jsontext import record_json
from .schema import article_changes, article_topics, articles, change_log, feed_changes, providers, topics

BATCH = 1000
ALL = "all"
LISTS = "@lists"     # change-log scope: which articles some feed holds changed (counts, feed lists)
EVERYTHING = "*"     # change-log scope: anything may have changed (taxonomy edits, huge writes)
LOG_KEEP = 1000      # change-log rows kept; a process further behind drops everything it holds
LOG_MAX_SCOPE = 500  # a write touching more feeds is logged as EVERYTHING (one short row)
# Noted article ids held in memory; past this they move to a temporary table of the write's
# connection (an import of a whole tree notes every id: 10 MB of Python strings at 100k).
NOTE_SPILL = 5000

_temporary = MetaData()
noted_table = Table("noted_articles", _temporary, Column("id", String(255), nullable=False),
                    Index("ix_noted_articles_id", "id"), prefixes=["TEMPORARY"])


def topic_identity(slug: str) -> str:
    """The feed identity of a topic (``topics/<slug>``): also what feed ids derive from."""
    return f"topics/{slug}"


def provider_identity(domain: str) -> str:
    """The feed identity of a provider (``providers/<domain>``)."""
    return f"providers/{domain}"


def feeds_of_row(public: bool, topics: Iterable[str], provider_domain: str) -> list[str]:
    """The feed identities an article is in: none unless public; else all, its topics, its provider."""
    if not public:
        return []
    return sorted({ALL, provider_identity(provider_domain), *(topic_identity(s) for s in topics)})


@dataclass(frozen=True)
class FeedState:
    """One feed's change state: ``version`` counts its changes (1 when first seen);
    ``changed_at`` is when its entries last changed (aware UTC, whole seconds)."""

    version: int
    changed_at: datetime


class _Old(NamedTuple):
    digest: str
    changed_ts: int
    feeds: list[str]


def _when(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _record_ts(record: dict[str, Any], published_ts: int) -> int:
    """The newest date a record gives itself (published or updatedDateTime), in Unix seconds."""
    value = record.get("updatedDateTime")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
            return max(published_ts, int(parsed.timestamp()))
        except ValueError:
            pass
    return published_ts


def _digest(record: dict[str, Any], topics: list[str], names: dict[str, str], provider_name: str | None) -> str:
    """What an article's entry shows: its record, the display names of its topics and its
    provider's display name from the taxonomy (``None``: the record's own name is shown)."""
    payload = record_json([record, [[s, names.get(s, s)] for s in topics], provider_name])
    return hashlib.sha256(payload.encode()).hexdigest()


class ChangeReads(Access):
    def changes_since(self, seq: int | None) -> list[tuple[int, str, list[str]]]:
        """Change-log rows ``(seq, version, scope)`` from ``seq`` on (that row included), oldest
        first, in one query; with ``seq=None`` only the newest row (where a process starts). A
        scope lists the feed identities a committed write changed, plus ``LISTS`` when any
        feed's membership changed, or is ``[EVERYTHING]``. Only the last ``LOG_KEEP`` rows are
        kept, and a restored backup starts an older log: a caller whose own last row is not the
        first one returned has missed changes."""
        with self._conn() as conn:
            stmt = select(change_log.c.seq, change_log.c.version, change_log.c.scope)
            if seq is None:
                rows = conn.execute(stmt.order_by(change_log.c.seq.desc()).limit(1))
            else:
                rows = conn.execute(stmt.where(change_log.c.seq >= seq).order_by(change_log.c.seq))
            return [(int(r.seq), r.version, list(r.scope)) for r in rows]

    def feed_changes(self, identities: Iterable[str]) -> dict[str, FeedState]:
        """``{identity: FeedState}`` for the given feed identities (``all``, ``topics/<slug>``,
        ``providers/<domain>``); feeds never seen (no article yet, or an index not re-imported
        since the upgrade) are absent."""
        wanted = sorted(set(identities))
        out: dict[str, FeedState] = {}
        with self._conn() as conn:
            for start in range(0, len(wanted), BATCH):
                for r in conn.execute(select(feed_changes).where(feed_changes.c.identity.in_(wanted[start:start + BATCH]))):
                    out[r.identity] = FeedState(r.version, _when(r.changed_ts))
        return out

    def feeds_of(self, article_ids: Iterable[str]) -> dict[str, list[str]]:
        """``{article id: [feed identity, …]}``: the feeds each article is in now (sorted; empty
        for an article that is not public). Unknown ids are absent. With ``feed_changes`` this
        is what targeted cache invalidation or a push hub needs: the feeds a write touched."""
        ids = sorted(set(article_ids))
        out: dict[str, list[str]] = {}
        with self._conn() as conn:
            for start in range(0, len(ids), BATCH):
                for r in conn.execute(select(articles.c.id, articles.c.public, articles.c.topics, articles.c.provider_domain)
                                      .where(articles.c.id.in_(ids[start:start + BATCH]))):
                    out[r.id] = feeds_of_row(bool(r.public), r.topics, r.provider_domain)
        return out


class ChangeWrites(WriteAccess):
    """Mixed into ``Transaction``: the writes note, ``settle_changes`` decides at commit."""

    noted_articles: set[str]  # the noted ids not yet moved to ``noted_table``
    noted_spilled: bool       # whether ``noted_table`` holds noted ids
    noted_feeds: set[str]
    changed_feeds: dict[str, FeedState]
    membership_changed: bool  # some article entered or left some feed (set by ``settle_changes``)
    taxonomy_noted: bool      # a topic's or provider's own name or data changed (idem)

    def note_articles(self, ids: Iterable[str]) -> None:
        """These articles may have changed (written, removed, relinked, (un)published)."""
        self.noted_articles.update(ids)
        if len(self.noted_articles) > NOTE_SPILL:
            self._spill_noted()

    def _note_selected(self, ids: Select[Any]) -> None:
        """Note the article ids that ``ids`` (a one-column SELECT) finds, inside the database: a
        rename can touch every article (a first import names every provider), and 1M ids held as
        a Python set and a parameter list took an import to 650 MB."""
        self._noted_table()
        self.conn.execute(insert(noted_table).from_select(["id"], ids))

    def noted_anything(self) -> bool:
        """Whether any article or feed was noted since the last ``settle_changes``."""
        return bool(self.noted_articles or self.noted_spilled or self.noted_feeds)

    def _noted_table(self) -> None:
        """Create ``noted_table`` for this transaction unless it holds noted ids already."""
        if not self.noted_spilled:
            noted_table.drop(self.conn, checkfirst=True)
            noted_table.create(self.conn)
            self.noted_spilled = True

    def _spill_noted(self) -> None:
        """Move the noted ids to ``noted_table`` (duplicates allowed: read back distinct)."""
        self._noted_table()
        ids = list(self.noted_articles)
        for start in range(0, len(ids), BATCH):
            self.conn.execute(insert(noted_table), [{"id": i} for i in ids[start:start + BATCH]])
        self.noted_articles = set()

    def _noted_chunks(self) -> Iterator[list[str]]:
        """The noted ids, sorted, ``BATCH`` at a time; empties the notes."""
        if not self.noted_spilled:
            ids = sorted(self.noted_articles)
            self.noted_articles = set()
            for start in range(0, len(ids), BATCH):
                yield ids[start:start + BATCH]
            return
        self._spill_noted()
        if self.conn.dialect.name == "postgresql":
            # Autovacuum never analyzes a temporary table: without statistics the planner reads
            # each chunk by a full scan and sort (1.6 s a chunk at 2M noted rows, quadratic over
            # a 1M first import); with them, a range scan of the index.
            self.conn.exec_driver_sql(f"ANALYZE {noted_table.name}")
        after = ""
        while chunk := list(self.conn.execute(select(noted_table.c.id).where(noted_table.c.id > after).distinct()
                                              .order_by(noted_table.c.id).limit(BATCH)).scalars()):
            yield chunk
            after = chunk[-1]
        noted_table.drop(self.conn)
        self.noted_spilled = False

    def note_feeds(self, identities: Iterable[str]) -> None:
        """These feeds changed in themselves (a topic's or provider's name or data)."""
        self.noted_feeds.update(identities)

    def note_topics_renamed(self, slugs: Iterable[str]) -> None:
        """Articles carrying these topics show a new category name: compare them again."""
        slugs = sorted(set(slugs))
        for start in range(0, len(slugs), BATCH):
            self._note_selected(select(article_topics.c.article_id)
                                .where(article_topics.c.topic_slug.in_(slugs[start:start + BATCH])))

    def note_providers_renamed(self, domains: Iterable[str]) -> None:
        """Articles of these providers show a new author name: compare them again."""
        domains = sorted(set(domains))
        for start in range(0, len(domains), BATCH):
            self._note_selected(select(articles.c.id).where(articles.c.provider_domain.in_(domains[start:start + BATCH])))

    def settle_changes(self, now: int | None = None) -> dict[str, FeedState]:
        """Compare the noted articles with their stored digests and bump the feeds whose entries
        changed; returns ``{identity: new FeedState}`` of those feeds (also kept on the
        transaction as ``changed_feeds``). ``now`` is Unix seconds (the clock by default)."""
        now = int(time.time()) if now is None else now
        names: dict[str, str] = dict(self.conn.execute(select(topics.c.slug, topics.c.name)).all())  # type: ignore[arg-type]
        provider_names: dict[str, str] = dict(
            self.conn.execute(select(providers.c.domain, providers.c.name)).all())  # type: ignore[arg-type]
        touched: dict[str, int] = {}  # identity -> the time a feed first seen would take
        self.membership_changed = False
        for chunk in self._noted_chunks():
            self._settle_articles(chunk, names, provider_names, now, touched)
        self.taxonomy_noted = bool(self.noted_feeds)
        for identity in self.noted_feeds:
            touched.setdefault(identity, now)
        self.changed_feeds = self._bump_feeds(touched, now)
        self.noted_feeds = set()
        return self.changed_feeds

    def log_change(self, version: str) -> list[str]:
        """Append this transaction's change-log row (after ``settle_changes``, under the write
        lock, so ``seq`` follows commit order) and drop rows older than ``LOG_KEEP``; returns
        its scope. Taxonomy edits (``noted_feeds``) are logged as ``EVERYTHING``: a topic's or
        provider's name or data shows in feed titles, categories, authors, lists and counts."""
        scope = sorted(self.changed_feeds)
        if self.membership_changed:
            scope.append(LISTS)
        if self.taxonomy_noted or len(scope) > LOG_MAX_SCOPE:
            scope = [EVERYTHING]
        seq = int(self.conn.execute(select(func.coalesce(func.max(change_log.c.seq), 0))).scalar() or 0) + 1
        self.conn.execute(insert(change_log).values(seq=seq, version=version, scope=scope))
        if seq > LOG_KEEP and seq % 100 == 0:  # pruned now and then: one indexed range delete
            self.conn.execute(delete(change_log).where(change_log.c.seq <= seq - LOG_KEEP))
        return scope

    def _settle_articles(self, chunk: list[str], names: dict[str, str], provider_names: dict[str, str], now: int,
                         touched: dict[str, int]) -> None:
        old = {r.article_id: _Old(r.digest, r.changed_ts, r.feeds) for r in self.conn.execute(
            select(article_changes).where(article_changes.c.article_id.in_(chunk)))}
        current = {r.id: r for r in self.conn.execute(
            select(articles.c.id, articles.c.public, articles.c.topics, articles.c.provider_domain, articles.c.record,
                   articles.c.published_ts).where(articles.c.id.in_(chunk)))}
        gone = [i for i in chunk if i not in current and i in old]
        self.membership_changed |= any(old[i].feeds for i in gone)
        for i in gone:
            for identity in old[i].feeds:
                touched.setdefault(identity, now)
        if gone:
            self.conn.execute(delete(article_changes).where(article_changes.c.article_id.in_(gone)))
        inserts, updates = [], []
        for i, r in current.items():
            digest = _digest(r.record, r.topics, names, provider_names.get((r.provider_domain or "").lower()))
            feeds = feeds_of_row(bool(r.public), r.topics, r.provider_domain)
            prev = old.get(i)
            if prev is None:  # first seen: its own newest date, so a re-import renders the same bytes
                first = min(now, _record_ts(r.record, r.published_ts))
                self.membership_changed |= bool(feeds)
                for identity in feeds:
                    touched[identity] = max(touched.get(identity, first), first)
                inserts.append({"article_id": i, "digest": digest, "changed_ts": first, "feeds": feeds})
                continue
            self.membership_changed |= prev.feeds != feeds
            if prev.digest != digest:
                for identity in {*prev.feeds, *feeds}:
                    touched.setdefault(identity, now)
                updates.append({"b_id": i, "b_digest": digest, "b_ts": now, "b_feeds": feeds})
            elif prev.feeds != feeds:  # same entry, other feeds (published, duplicate, topics moved)
                for identity in set(prev.feeds).symmetric_difference(feeds):
                    touched.setdefault(identity, now)
                updates.append({"b_id": i, "b_digest": digest, "b_ts": prev.changed_ts, "b_feeds": feeds})
        if inserts:
            self.conn.execute(insert(article_changes), inserts)
        if updates:
            self.conn.execute(update(article_changes).where(article_changes.c.article_id == bindparam("b_id"))
                              .values(digest=bindparam("b_digest"), changed_ts=bindparam("b_ts"),
                                      feeds=bindparam("b_feeds")), updates)

    def _bump_feeds(self, touched: dict[str, int], now: int) -> dict[str, FeedState]:
        out: dict[str, FeedState] = {}
        names = sorted(touched)
        for start in range(0, len(names), BATCH):
            chunk = names[start:start + BATCH]
            old = {r.identity: r for r in self.conn.execute(select(feed_changes).where(feed_changes.c.identity.in_(chunk)))}
            inserts, updates = [], []
            for identity in chunk:
                prev = old.get(identity)
                if prev is None:
                    inserts.append({"identity": identity, "version": 1, "changed_ts": touched[identity]})
                    out[identity] = FeedState(1, _when(touched[identity]))
                else:  # strictly later: If-Modified-Since has one-second resolution
                    ts = max(now, prev.changed_ts + 1)
                    updates.append({"b_identity": identity, "b_version": prev.version + 1, "b_ts": ts})
                    out[identity] = FeedState(prev.version + 1, _when(ts))
            if inserts:
                self.conn.execute(insert(feed_changes), inserts)
            if updates:
                self.conn.execute(update(feed_changes).where(feed_changes.c.identity == bindparam("b_identity"))
                                  .values(version=bindparam("b_version"), changed_ts=bindparam("b_ts")), updates)
        return out

