"""The article index: SQLite by default, PostgreSQL with the same code (SQLAlchemy Core).

All SQL of topicfeed lives in this package, one module per table family: ``articles``,
``taxonomy`` (topics, providers), ``spellings`` (their names as records spell them), ``files`` (file states, bad files), ``listing`` (an import's
listing of the tree, diffed in SQL), ``clients``, ``imports``
(the import log), ``websub``; the
tables are in ``schema`` and their history in ``migrations`` (see ``migrate``). ``Store``
reads; ``Store.write()`` yields a ``Transaction`` that reads and writes in one database
transaction. Every write transaction bumps ``version`` and appends a change-log row naming the
feeds it changed (``changes``), which the server uses to validate caches. The content files stay the source of truth; ``feeds.importer`` rebuilds the
articles from them (clients exist only here).
"""
from __future__ import annotations

import os
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, create_engine, event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.engine import Engine

from . import migrate
from .admin_tokens import AdminToken, AdminTokenReads, AdminTokenWrites
from .changes import (EVERYTHING, LISTS, ChangeReads, ChangeWrites, FeedState, feeds_of_row, provider_identity,
                      topic_identity)
from .articles import ANALYZE_FIRST, ArticleReads, ArticleRow, ArticleWrites, DocRow, IndexRow, NewArticle
from .clients import Client, ClientReads, ClientWrites
from .files import BadFile, FileReads, FileState, FileWrites
from .imports import ImportLog, ImportStatus
from .jsontext import RawJSON, dumps, record_json
from .lease import Lease, LeaseStore, read_lease
from .listing import ListedFile, ListingWrites
from .migrate import SchemaError
from .schema import meta
from .taxonomy import Provider, TaxonomyReads, TaxonomyWrites, Topic
from .websub import WebSubStore

__all__ = ["EVERYTHING", "LISTS", "UNAVAILABLE", "AdminToken", "ArticleRow", "BadFile", "Client", "DocRow", "FeedState", "FileState", "ImportStatus", "IndexRow", "Lease", "LeaseStore",
           "ListedFile", "NewArticle", "Provider", "RawJSON", "SchemaError", "Store", "StoreBusy", "Topic", "Transaction", "WebSubStore", "WriterFenced", "dumps", "read_lease", "record_json",
           "index_revision", "upgrade_index", "downgrade_index", "feeds_of_row", "provider_identity", "topic_identity"]


BUSY_TIMEOUT_MS = 30000  # imports and other long writers wait this long for the write lock


# What a connection that cannot be had, or is lost, raises: the database down or unreachable,
# PostgreSQL at max_connections, a pool with no free connection for 30 s. The server answers
# 503 for these and the CLI one line naming database_url (the layers above import no SQLAlchemy).
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)


class WriterFenced(Exception):
    """This process's writer lease was taken over (``Store.fence``): the write transaction
    stopped before its next statement and rolled back entirely."""


class StoreBusy(Exception):
    """Another writer (an import, another process) held the write lock past the caller's bound;
    nothing was written."""


def _engine(url: str, pool_size: int | None = None) -> Engine:
    """An engine for ``url``. ``pool_size`` caps a PostgreSQL engine's connections (no overflow,
    so processes x ``pool_size`` bounds what the server's ``max_connections`` must allow; a
    thread past the cap waits for a free connection); SQLite ignores it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, json_serializer=dumps, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    sizing = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": 0}
    # pg_stat_activity then tells which process holds which connections (a URL's own wins)
    named = {} if "application_name=" in url else {"connect_args": {"application_name": f"topicfeed/{os.getpid()}"}}
    return create_engine(url, json_serializer=dumps, pool_pre_ping=True, **sizing, **named)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA cache_size=-8000")  # 8 MB page cache per connection: the VPS has 512 MB
    cur.close()


class Transaction(ArticleReads, ArticleWrites, TaxonomyReads, TaxonomyWrites, FileReads, FileWrites,
                  ClientReads, ClientWrites, AdminTokenReads, AdminTokenWrites, ChangeReads, ChangeWrites,
                  ListingWrites):
    """One open write transaction (from ``Store.write()``): every read sees its own writes.
    ``changed_feeds`` holds, after commit, the feeds whose entries it changed (``changes``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.noted_articles, self.noted_feeds = set(), set()
        self.noted_spilled = False
        self.changed_feeds = {}
        self.membership_changed = self.taxonomy_noted = False
        # Set by a writer whose changes readers cannot see (an import that only re-stamped
        # touched files): the commit then keeps the version, so caches stay valid.
        self.keep_version = False
        # articles put so far and the count at which statistics are refreshed (PostgreSQL)
        self.articles_put, self.analyze_at = 0, ANALYZE_FIRST
        self.topic_deltas, self.provider_deltas = Counter(), Counter()  # see ``spellings``

    def _conn(self) -> AbstractContextManager[Connection]:
        return nullcontext(self.conn)

    def set_meta(self, key: str, value: str) -> None:
        """Store a meta value (``taxonomy`` fingerprint, ``roots``…), replacing the old one."""
        self.conn.execute(meta.delete().where(meta.c.key == key))
        self.conn.execute(meta.insert().values(key=key, value=value))


class Store(ArticleReads, TaxonomyReads, FileReads, ClientReads, AdminTokenReads, ImportLog, ChangeReads):
    """One database. ``url`` is an SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).

    Opening migrates the index to this topicfeed's schema (under a lock, see ``migrate``);
    with ``auto_upgrade=False`` an index at another revision raises ``SchemaError`` instead.
    ``pool_size``: at most that many PostgreSQL connections (``_engine``).
    """

    def __init__(self, url: str, *, auto_upgrade: bool = True, pool_size: int | None = None) -> None:
        self.url = url
        self._engine = _engine(url, pool_size)
        try:
            if migrate.needs_upgrade(self._engine):
                if not auto_upgrade:
                    raise SchemaError(f"the index at {url} is not at schema revision {migrate.HEAD}: "
                                      "run `topicfeed upgrade`")
                migrate.upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._memo: dict[str, tuple[str, Any]] = {}
        self.websub = WebSubStore(self._engine)  # the WebSub hub's tables (writes keep the version)
        self._writing = 0  # write transactions open in this process (threads)
        # which writer owns the write path (writes keep the version)
        self.lease = LeaseStore(self._engine, writing=lambda: self._writing > 0)
        # Set (by the process's writer lease) once another writer took the lease over: every
        # write transaction then stops before its next statement. An Event, checked per
        # statement: the renewal thread's state, no query.
        self.fence: threading.Event | None = None
        # Called (by the process's writer lease) as the last step of every write transaction, on
        # its connection: raises WriterFenced when the lease is no longer this writer's, so that a
        # take-over its renewals have not seen yet (they run every third of the lease) stops an
        # import that would otherwise commit after it.
        self.confirm: Callable[[Connection], None] | None = None

    def _conn(self) -> AbstractContextManager[Connection]:
        return self._engine.connect()

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def count_statements(self) -> list[int]:
        """A one-item list whose item counts the SQL statements this store runs from now on
        (bench/write_bench.py reports statements per write; the database stays behind the store)."""
        counter = [0]
        event.listen(self._engine, "before_cursor_execute", lambda *_: counter.__setitem__(0, counter[0] + 1))
        return counter

    def close(self) -> None:
        """Close pooled connections (the store opens new ones if used again)."""
        self._engine.dispose()

    def analyze(self) -> None:
        """Refresh the planner's statistics after a large change: SQLite has no autovacuum, and
        PostgreSQL's would analyze the new rows only a while after the commit, so the first
        queries after a large import would be planned for the tables as they were."""
        with self._engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")

    @contextmanager
    def write(self, lock_timeout: float | None = None) -> Iterator[Transaction]:
        """One transaction; commits with a new version or rolls back entirely.

        With ``lock_timeout`` (seconds) the write lock is taken first and waited for at most
        that long, else ``StoreBusy`` is raised before anything changed: SQLite's
        ``busy_timeout`` bounds the first write; PostgreSQL's ``lock_timeout`` bounds a
        transaction-scoped advisory lock that serialises such writers across processes. Before
        it commits, the feeds whose entries it changed get a new version and change time
        (``changes.ChangeWrites.settle_changes``).
        """
        with self._engine.begin() as conn, self._fenced(conn), self._counted():
            if self.dialect == "postgresql":
                # Plan every statement for the tables as they are now: psycopg prepares a statement
                # after 5 runs and PostgreSQL then keeps a generic plan costed for the tables as they
                # were. In an import's one long transaction that froze seq scans chosen while the
                # tables were empty (DELETE ... WHERE article_id IN (1000 ids) scanning the whole
                # growing table: quadratic, 1 s per statement at 10k articles, never ending at 1M).
                conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            tx = Transaction(conn)
            if lock_timeout is not None:
                self._claim_write_lock(conn, tx, lock_timeout)
            yield tx
            tx.settle_spellings()
            tx.settle_changes()
            if not tx.keep_version:
                version = secrets.token_hex(8)
                tx.set_meta("version", version)
                tx.log_change(version)  # after the version row: its lock orders writers on PostgreSQL too
            if self.confirm is not None:
                self.confirm(conn)

    @contextmanager
    def _counted(self) -> Iterator[None]:
        """Count the write transactions open in this process (``LeaseStore`` asks, on SQLite)."""
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1

    @contextmanager
    def _fenced(self, conn: Connection) -> Iterator[None]:
        """Raise ``WriterFenced`` before each statement on ``conn`` once ``fence`` is set (an
        import between its batches, a curator write): nothing of the transaction commits."""
        fence = self.fence
        if fence is None:
            yield
            return

        def check(*_: Any) -> None:
            if fence.is_set():
                raise WriterFenced("another writer took the writer lease over: this process writes no more")

        check()
        event.listen(conn, "before_cursor_execute", check)
        try:
            yield
        finally:
            event.remove(conn, "before_cursor_execute", check)

    def _claim_write_lock(self, conn: Connection, tx: Transaction, timeout: float) -> None:
        millis = max(int(timeout * 1000), 1)
        try:
            if self.dialect == "sqlite":
                conn.exec_driver_sql(f"PRAGMA busy_timeout={millis}")
                try:
                    tx.set_meta("version", "writing")  # the first write takes SQLite's write lock
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            else:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {millis}")
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7461706963)")  # 'topic' in hex digits
        except OperationalError as exc:
            raise StoreBusy(f"the index is busy (another write held its lock for more than {timeout:g} s)") from exc

    def version(self) -> str:
        """Changes with every committed write ("empty" before the first)."""
        return self.get_meta("version") or "empty"

    def created(self) -> datetime | None:
        """When this index was made (schema revision 0005 on), else None."""
        value = self.get_meta("created")
        return datetime.fromtimestamp(int(value), timezone.utc) if value and value.isdigit() else None

    def get_meta(self, key: str) -> str | None:
        """A meta value, None if never set."""
        with self._conn() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def _per_version(self, name: str, compute: Callable[[], Any]) -> Any:
        """Aggregates (counts over 100k rows) are computed once per store version."""
        version = self.version()
        hit = self._memo.get(name)
        if hit is None or hit[0] != version:
            hit = (version, compute())
            self._memo[name] = hit
        return hit[1]

    def topics(self) -> list[Topic]:
        """Every topic (taxonomy first, then names only seen in records) with its public count."""
        return self._per_version("topics", self.counted_topics)

    def providers(self) -> list[Provider]:
        """Every provider with its public count (organisation files first, then record-only ones)."""
        return self._per_version("providers", self.counted_providers)


def index_revision(url: str) -> tuple[str | None, str]:
    """(revision the index at ``url`` is at, this topicfeed's head revision); does not migrate."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return migrate.current(conn), migrate.HEAD
    finally:
        engine.dispose()


def upgrade_index(url: str) -> tuple[str | None, str]:
    """``topicfeed upgrade``: migrate to the head revision; returns (before, after)."""
    engine = _engine(url)
    try:
        return migrate.upgrade(engine)
    finally:
        engine.dispose()


def downgrade_index(url: str, revision: str) -> tuple[str | None, str]:
    """``topicfeed downgrade``: undo revisions down to ``revision``; returns (before, after)."""
    engine = _engine(url)
    try:
        return migrate.downgrade(engine, revision)
    finally:
        engine.dispose()
