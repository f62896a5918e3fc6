"""Schema migrations with Alembic, run from code (no alembic.ini): revisions live in
``feeds/store/migrations/versions``.

``upgrade`` runs at every start (``Store(url)``) and from ``topicfeed upgrade``. It holds a
lock while it checks and migrates, so two processes starting at once migrate once: on
PostgreSQL a transaction-scoped advisory lock, on SQLite the database's write lock (the
whole migration is one ``BEGIN IMMEDIATE`` transaction, so it is also all-or-nothing).
An index written before migrations existed (``meta.schema`` = "2", no ``alembic_version``)
is stamped as the baseline revision first, so its clients and articles are kept.

Downgrading: run ``topicfeed downgrade REVISION`` with the *newer* topicfeed (it knows how
to undo its revisions) before installing the older one; ``topicfeed upgrade --show``
prints the revision an index is at.

Changing the schema: edit ``schema.py``, add ``migrations/versions/NNNN_what.py`` (copy the
newest; ``down_revision`` = its ``revision``) and set ``HEAD``. tests/test_migrations.py
checks that the revisions build exactly ``schema.py`` and that ``HEAD`` is their head.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect, pool, text

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic is imported only when an index needs migrating: it adds ~11 MB to every process,
# and a start at the head revision needs only HEAD and one read of alembic_version.
HEAD = "0009"
BASELINE = "0001"
LEGACY_SCHEMA = "2"  # meta.schema of indexes made before migrations existed
_LOCK_KEY = 0x746F706963  # pg_advisory_xact_lock key: "topic" in ASCII, any constant works
MIGRATIONS = Path(__file__).parent / "migrations"
# Alembic logs two INFO lines per command even when nothing runs; ``upgrade`` reports what changed.
logging.getLogger("alembic").setLevel(logging.WARNING)
log = logging.getLogger(__name__)


class SchemaError(RuntimeError):
    """The index cannot be used or migrated by this topicfeed; the message says why and what to do."""


def _config(conn: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@cache
def scripts() -> ScriptDirectory:
    """The revisions in ``migrations/versions``."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def _stamped(conn: Connection) -> str | None:
    """The revision in Alembic's version table (its default name and layout)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current(conn: Connection) -> str | None:
    """The revision the index is at: None for an empty database, BASELINE for a legacy index."""
    rev = _stamped(conn)
    if rev is not None:
        return rev
    legacy = _legacy_schema(conn)
    if legacy not in (None, LEGACY_SCHEMA):
        raise SchemaError(f"the index at {conn.engine.url} has schema {legacy}, older than any this topicfeed can "
                          "upgrade: move it away and run `topicfeed import` again (clients must be paired again)")
    return BASELINE if legacy else None


def _legacy_schema(conn: Connection) -> str | None:
    if not inspect(conn).has_table("meta"):
        return None
    return conn.execute(text("SELECT value FROM meta WHERE key = 'schema'")).scalar()


def _check_known(url: str, rev: str | None) -> None:
    if rev is None or rev == HEAD:
        return
    from alembic.util.exc import CommandError

    try:
        scripts().get_revision(rev)
    except CommandError:
        raise SchemaError(f"the index at {url} is at schema revision {rev}, which this topicfeed does not know "
                          f"(a newer topicfeed wrote it): with that version run `topicfeed downgrade {HEAD}`, "
                          "or install it again") from None


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the migration lock until it commits."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # pysqlite would autocommit DDL and begin lazily; take SQLite's write lock up front instead
        # (the recipe in SQLAlchemy's pysqlite docs), so the migration is one atomic transaction.
        locker = create_engine(engine.url, poolclass=pool.NullPool, connect_args={"timeout": 60})
        event.listen(locker, "connect", lambda dbapi_conn, _: setattr(dbapi_conn, "isolation_level", None))
        event.listen(locker, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            with locker.begin() as conn:
                yield conn
        finally:
            locker.dispose()
    else:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            yield conn  # an in-memory SQLite database belongs to this process alone


def needs_upgrade(engine: Engine) -> bool:
    """Cheap check without the lock: the index is not at this topicfeed's head revision."""
    with engine.connect() as conn:
        rev = current(conn)
    _check_known(str(engine.url), rev)
    return rev != HEAD


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Migrate the index to ``target``; returns (revision before, revision after)."""
    from alembic import command

    with _locked(engine) as conn:
        before = current(conn)
        _check_known(str(engine.url), before)
        if before is not None and _stamped(conn) is None:
            command.stamp(_config(conn), BASELINE)  # legacy index: it already has the baseline tables
        command.upgrade(_config(conn), target)
        after = current(conn) or "none"
    if before != after:
        log.info("migrated the index at %s from revision %s to %s", engine.url, before or "none", after)
    return before, after


def downgrade(engine: Engine, target: str) -> tuple[str | None, str]:
    """Migrate the index down to ``target`` (a revision id, or "base" to drop every table)."""
    from alembic import command
    from alembic.util.exc import CommandError

    with _locked(engine) as conn:
        before = current(conn)
        _check_known(str(engine.url), before)
        if before is not None and _stamped(conn) is None:
            command.stamp(_config(conn), BASELINE)
        try:
            command.downgrade(_config(conn), target)
        except CommandError as exc:
            raise SchemaError(f"cannot downgrade the index at {engine.url} to {target!r}: {exc}") from None
        after = current(conn) or "none"
    log.info("migrated the index at %s from revision %s down to %s", engine.url, before or "none", after)
    return before, after
