"""The writer lease: which writer instance owns the index's write path (README "Scaling out").

One row (``writer_lease``, id 1) names the holder (an instance id), says where it runs
(``host:/instance/path pid N``) and until when it holds (``expires_ms``, milliseconds since the
epoch by the database's clock on PostgreSQL, by this machine's on SQLite, where every process
is on one machine). A claim is one conditional ``UPDATE`` — it succeeds when the row is this
holder's, has expired, or is forced (an explicit take-over) — so two claimants cannot both win.

On PostgreSQL a running writer process also keeps a session connection holding a *shared*
advisory lock (``LOCK_KEY``): every process of the current writer (its server, an import beside
it) holds it, and a new claimant that can take the lock *exclusively* knows that no process of
any writer is running, so the holder of an unexpired row died (``kill -9``, a lost machine: the
server drops a dead session's locks) and is replaced at once. SQLite has no sessions: there a
dead writer is replaced once its lease expires (or by a take-over).
"""
from __future__ import annotations

import time
from typing import NamedTuple

from sqlalchemy import Connection, create_engine, inspect, or_, pool, select, text, update
from sqlalchemy.engine import Engine

from .schema import writer_lease

LOCK_KEY = 0x77726974657200  # pg advisory lock key: "writer" in ASCII, any constant works
ROW = 1  # the one row, made free (holder "", expired) by the migration


class Lease(NamedTuple):
    """The lease row: ``holder`` (an instance id), ``where`` (host, instance folder, pid of the
    process that renewed it last), ``renewed_ms`` and ``expires_ms`` (ms since the epoch) and
    ``now_ms``, the clock the times were compared with when this was read."""

    holder: str
    where: str
    renewed_ms: int
    expires_ms: int
    now_ms: int

    @property
    def live(self) -> bool:
        return self.expires_ms > self.now_ms


def _now_ms(conn: Connection) -> int:
    """The lease clock: the database server's on PostgreSQL (one clock for every machine)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")).scalar_one())
    return int(time.time() * 1000)


class LeaseStore:
    """The writer lease on ``engine``'s database. Its own statements autocommit at once (one
    statement each), outside any content transaction: a lease never bumps the store version."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session: Connection | None = None  # PostgreSQL: holds the shared advisory lock
        self._session_engine: Engine | None = None

    @property
    def postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def current(self) -> Lease | None:
        """The lease row (its migration makes it, free: holder "")."""
        with self._engine.connect() as conn:
            return self._read(conn)

    def _read(self, conn: Connection) -> Lease | None:
        row = conn.execute(select(writer_lease).where(writer_lease.c.id == ROW)).first()
        if row is None:
            return None
        return Lease(row.holder, row.location, row.renewed_ms, row.expires_ms, _now_ms(conn))

    def claim(self, holder: str, where: str, seconds: float, *, force: bool = False) -> Lease:
        """Make ``holder`` the writer until ``seconds`` from now when the lease is free, expired,
        already its own, or ``force``d; on PostgreSQL also when no process of any writer holds
        the advisory lock (the holder died). Returns the lease after the attempt: its ``holder``
        is ``holder`` when claimed, the other writer's otherwise (nothing changed then).

        A lease already ``holder``'s with more than two thirds of ``seconds`` left is returned
        as it is, without a write: a command run beside a running writer (``topicfeed status``
        during a long import on SQLite) does not wait for the write lock."""
        if not force:
            lease = self.current()
            if lease is not None and lease.holder == holder and lease.expires_ms - lease.now_ms > seconds * 667:
                return lease
        with self._engine.begin() as conn:
            now = _now_ms(conn)
            values = {"holder": holder, "location": where, "renewed_ms": now, "expires_ms": now + int(seconds * 1000)}
            free = force or self._nobody_running(conn)
            claimed = update(writer_lease).where(writer_lease.c.id == ROW).values(**values)
            if not free:
                claimed = claimed.where(or_(writer_lease.c.holder == holder, writer_lease.c.expires_ms <= now))
            conn.execute(claimed)
            lease = self._read(conn)
        assert lease is not None
        return lease

    def _nobody_running(self, conn: Connection) -> bool:
        """PostgreSQL: no session holds the writer's advisory lock (taken exclusively, at once
        released: the transaction-level try lock ends with this claim's transaction)."""
        if not self.postgres:
            return False
        return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}).scalar())

    def release(self, holder: str) -> None:
        """End ``holder``'s lease now (a clean stop): the next writer starts at once."""
        with self._engine.begin() as conn:
            conn.execute(update(writer_lease).where(writer_lease.c.id == ROW, writer_lease.c.holder == holder)
                         .values(expires_ms=0))

    def hold_session(self) -> None:
        """PostgreSQL: take the shared advisory lock on a connection of its own (outside the
        pool: one more connection per writer process) and keep it until ``drop_session``.
        Again after the connection was lost (``renew`` calls it). No-op on SQLite."""
        if not self.postgres or self._session is not None:
            return
        if self._session_engine is None:
            self._session_engine = create_engine(self._engine.url, poolclass=pool.NullPool,
                                                 connect_args=_connect_args(self._engine))
        session = self._session_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        session.execute(text("SELECT pg_advisory_lock_shared(:key)"), {"key": LOCK_KEY})
        self._session = session

    def drop_session(self) -> None:
        """Close the advisory-lock session (its lock goes with it)."""
        if self._session is not None:
            try:
                self._session.close()
            finally:
                self._session = None

    def renew(self, holder: str, where: str, seconds: float) -> bool:
        """Extend ``holder``'s lease (and re-take the session lock if it was lost); False when
        another writer holds the lease now (it took over)."""
        if self.postgres:
            try:
                self.hold_session()
                assert self._session is not None
                self._session.execute(text("SELECT 1"))
            except Exception:
                self.drop_session()  # a lost session: the next renewal connects again
                raise
        with self._engine.begin() as conn:
            now = _now_ms(conn)
            done = conn.execute(update(writer_lease).where(
                writer_lease.c.id == ROW, or_(writer_lease.c.holder == holder, writer_lease.c.expires_ms <= now))
                .values(holder=holder, location=where, renewed_ms=now, expires_ms=now + int(seconds * 1000)))
            return done.rowcount == 1


def read_lease(url: str) -> Lease | None:
    """The lease of the index at ``url`` without migrating it (``topicfeed upgrade`` and
    ``downgrade`` check it first); None when the index predates the lease (revision 0008)."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        if not inspect(engine).has_table(writer_lease.name):
            return None
        return LeaseStore(engine).current()
    finally:
        engine.dispose()


def _connect_args(engine: Engine) -> dict[str, str]:
    """The session connection is named like the pool's (``topicfeed/<pid>``) plus ``-lease``."""
    import os

    return {} if "application_name=" in str(engine.url) else {"application_name": f"topicfeed/{os.getpid()}-lease"}
