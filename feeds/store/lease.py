"""The writer lease: which writer instance owns the index's write path (README "Scaling out").

One row (``writer_lease``, id 1) names the holder (an instance id), says where it runs
(``host:/instance/path pid N``: the holder's *site* is ``host:/instance/path``) and until when it
holds (``expires_ms``, milliseconds since the epoch by the database's clock on PostgreSQL, by this
machine's on SQLite, where every process is on one machine). A claim is one conditional
``UPDATE``, so two claimants cannot both win. It succeeds when

- the row is this holder's *at this site* (the same instance id from another host or folder is
  a copy of the writer's folder, e.g. a restore on a second machine: refused while the row
  lives, as any other writer is), or
- no process of any writer runs (below) and the holder missed a renewal (half its lease has
  passed since the last one: a killed writer), or its lease expired, or
- it is forced (``topicfeed writer take-over``).

*Running*: every long-running process of the writer holds a shared lock while it runs (its
server's, an import's): on PostgreSQL a session-level advisory lock (``LOCK_KEY``) on a
connection of its own; on SQLite ``flock(2)`` on ``<database>.writer-lock`` next to the database
file (SQLite is a local file: every writer is on this machine, and the kernel drops the lock of a
dead process). A claimant that can take the lock exclusively knows that no writer process runs.
One that cannot is refused even past the row's expiry: on SQLite a long import holds the
database's one write lock for its whole transaction, so the renewal (another connection) cannot
write the row until it commits, and a renewal inside the import's transaction would not help
either: other connections see only committed rows (WAL). The lock file keeps the writer live
meanwhile, and ``Lease.live`` (what ``writer status`` and migrations look at) says so.

Why a killed writer waits for a missed renewal, not for nothing: a PostgreSQL restart drops every
session, the running writer's advisory lock too, so "nobody holds the lock" alone would let a
second writer in beside a live one. A live writer re-takes its lock within the renewal that
finds it lost (``renew``), so its row is never overdue.

A take-over on SQLite cannot write the row while the old writer's import holds the write lock:
it first writes a note (``<holder> <ms> <host:/folder>``) into the lock file, which the old
writer's renewal reads (a file read, no query) and so stops (its import rolls back) before the row
changes hands. The note names the taker's site too: a restore of the writer's folder elsewhere has
the writer's instance id, and its take-over must stop the writer all the same.
"""
from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Callable
from typing import IO, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    create_engine,
    func,
    inspect,
    or_,
    pool,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from .schema import writer_lease

LOCK_KEY = 0x77726974657200  # pg advisory lock key: "writer" in ASCII, any constant works
ROW = 1  # the one row, made free (holder "", expired) by the migration
LOCK_SUFFIX = ".writer-lock"  # SQLite: <database file> + this, next to it
PROBES = 3  # an exclusive probe may meet another claimant's probe: tried this often, PROBE_PAUSE apart
PROBE_PAUSE = 0.02  # seconds
RENEW_WAIT_MS = 200  # SQLite: how long a renewal waits for the write lock (a writer's own import holds it)
_NOTE = re.compile(rb"([0-9a-f]{16}) ([0-9]{13}) ([^\n]+)\n")  # a take-over note: holder, ms, site
NOTE_MAX = 8192  # bytes of the lock file read for a note (the site holds a path: PATH_MAX is 4096)


class Lease(NamedTuple):
    """The lease row: ``holder`` (an instance id), ``where`` (host, instance folder, pid of the
    process that renewed it last), ``renewed_ms`` and ``expires_ms`` (ms since the epoch) and
    ``now_ms``, the clock the times were compared with when this was read; ``running``: some
    process of a writer held the running lock then (module docstring)."""

    holder: str
    where: str
    renewed_ms: int
    expires_ms: int
    now_ms: int
    running: bool = False

    @property
    def live(self) -> bool:
        """Unexpired, or claimed and not released while a writer process runs (SQLite: a long
        import could not renew the row)."""
        return self.expires_ms > self.now_ms or (self.running and self.expires_ms > 0)

    @property
    def overdue(self) -> bool:
        """Half the lease has passed since the last renewal (every third): a renewal was missed."""
        return 2 * self.now_ms > self.renewed_ms + self.expires_ms


def site(where: str) -> str:
    """``host:/instance/folder`` of a ``where`` (``host:/instance/folder pid N``)."""
    return where.rsplit(" pid ", 1)[0]


def _now_ms(conn: Connection) -> int:
    """The lease clock: the database server's on PostgreSQL (one clock for every machine)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")).scalar_one())
    return int(time.time() * 1000)


class LeaseStore:
    """The writer lease on ``engine``'s database. Its own statements autocommit at once (one
    statement each), outside any content transaction: a lease never bumps the store version."""

    def __init__(self, engine: Engine, writing: Callable[[], bool] = lambda: False) -> None:
        self._engine = engine
        self._writing = writing  # whether this process has a write transaction open
        self._session: Connection | None = None  # PostgreSQL: holds the shared advisory lock
        self._session_engine: Engine | None = None
        self._lockfile: IO[bytes] | None = None  # SQLite: holds the shared flock
        self._claimed_ms = 0  # when this process last claimed: older take-over notes are not for it
        self.taker = ""  # SQLite: the writer a take-over note named, ``<id> at <site>`` (the row may not say so yet)
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        # SQLite in memory has no file, so no other process: nothing to lock
        self._lock_path = database + LOCK_SUFFIX if database and database != ":memory:" else None

    @property
    def postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def current(self) -> Lease | None:
        """The lease row (its migration makes it, free: holder ""), with ``running`` probed."""
        with self._engine.begin() as conn:  # a transaction: PostgreSQL's probe lock ends with it
            return self._read(conn, probe=True)

    def _read(self, conn: Connection, probe: bool = False) -> Lease | None:
        row = conn.execute(select(writer_lease).where(writer_lease.c.id == ROW)).first()
        if row is None:
            return None
        running = probe and not self._nobody_running(conn)
        return Lease(row.holder, row.location, row.renewed_ms, row.expires_ms, _now_ms(conn), running)

    def claim(self, holder: str, where: str, seconds: float, *, force: bool = False) -> Lease:
        """Make ``holder`` (at ``where``: ``host:/folder pid N``) the writer until ``seconds``
        from now when the module docstring's rules allow it, or ``force``d. Returns the lease
        after the attempt: its ``holder`` is ``holder`` when claimed, the other writer's
        otherwise (nothing changed then), and a copy's (same holder, another site) refused.

        A lease already ``holder``'s at this site with more than two thirds of ``seconds`` left,
        or one the rules refuse, is returned as it is, without a write: a command run beside a
        running writer (``topicfeed status`` or another writer's import during a long import on
        SQLite) does not wait for the write lock."""
        if not force:
            lease = self.current()
            mine = lease is not None and lease.holder == holder and site(lease.where) == site(where)
            if lease is not None and mine and lease.expires_ms - lease.now_ms > seconds * 667:
                self._claimed_ms = lease.renewed_ms
                return lease
            if lease is not None and not mine and not (lease.expires_ms == 0 or (not lease.running and lease.overdue)):
                return lease  # refused as the UPDATE below would, without waiting for SQLite's write lock
        else:
            self._note_take_over(holder, where)
        with self._engine.begin() as conn:
            now = _now_ms(conn)
            values = {"holder": holder, "location": where, "renewed_ms": now, "expires_ms": now + int(seconds * 1000)}
            claimed = update(writer_lease).where(writer_lease.c.id == ROW).values(**values)
            if not force:
                c = writer_lease.c
                mine = self._same_writer(holder, where)
                if self._nobody_running(conn):  # the holder's processes are all gone: wait for a missed renewal
                    claimed = claimed.where(or_(mine, 2 * now > c.renewed_ms + c.expires_ms))
                else:  # a process of a writer runs: only its own (an expired row on SQLite: see above),
                    # or a lease released by a clean stop (whose process may not have exited yet)
                    claimed = claimed.where(or_(mine, c.expires_ms == 0))
            conn.execute(claimed)
            lease = self._read(conn)
        assert lease is not None
        if lease.holder == holder and lease.where == where:
            self._claimed_ms = lease.renewed_ms
        return lease

    @staticmethod
    def _same_writer(holder: str, where: str) -> ColumnElement[bool]:
        """SQL: the row is ``holder``'s at ``where``'s site (any pid)."""
        prefix = site(where) + " pid "
        return and_(writer_lease.c.holder == holder,
                    func.substr(writer_lease.c.location, 1, len(prefix)) == prefix)

    def _nobody_running(self, conn: Connection) -> bool:
        """Whether no process of any writer holds the running lock: taken exclusively, at once
        released (PostgreSQL: a transaction-level try lock, ended with ``conn``'s transaction)."""
        for attempt in range(PROBES):
            if attempt:  # Event.wait, not time.sleep: under libfaketime (a skewed writer's clock) that fails
                threading.Event().wait(PROBE_PAUSE)
            if self.postgres:
                free = bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}).scalar())
            else:
                free = self._lock_file_free()
            if free:
                return True
        return False

    def _lock_file_free(self) -> bool:
        if self._lock_path is None:
            return True
        try:
            probe = open(self._lock_path, "rb")
        except FileNotFoundError:  # no writer ever held it
            return True
        with probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True  # closing the probe drops its lock

    def _open_lock_file(self) -> IO[bytes]:
        """The SQLite lock file, opened for reading and writing (a take-over writes its note)."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)  # type: ignore[arg-type]
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o644)  # whatever the umask: a reader's `writer status` probes it
        return os.fdopen(fd, "r+b", buffering=0)

    def _note_take_over(self, holder: str, where: str) -> None:
        """SQLite: tell the old writer's renewal of the take-over before the row can change
        (written in place: the running processes' locks are on this file, not on a new one)."""
        if self._lock_path is None or self.postgres:
            return
        with self._open_lock_file() as fh:
            os.pwrite(fh.fileno(), f"{holder} {int(time.time() * 1000):013d} {site(where)}\n".encode(), 0)

    def _taken_over(self, holder: str, where: str) -> bool:
        """SQLite: the lock file holds a take-over note by another writer (another holder, or
        this holder at another site: a copy of its folder) made since our claim."""
        if self._lockfile is None:
            return False
        note = _NOTE.match(os.pread(self._lockfile.fileno(), NOTE_MAX, 0))
        if note is None or int(note[2]) < self._claimed_ms:
            return False
        taker, taker_site = note[1].decode(), note[3].decode(errors="replace")
        if taker == holder and taker_site == site(where):
            return False
        self.taker = f"{taker} at {taker_site}"
        return True

    def still_mine(self, conn: Connection, holder: str, where: str) -> Lease | None:
        """Inside a write transaction on ``conn``, just before it commits: None while the lease
        row is ``holder``'s at ``where``'s site and (SQLite) no take-over note names another
        writer; else the lease as read (``taker`` names a note's writer). PostgreSQL reads the row
        ``FOR SHARE``: a take-over's ``UPDATE`` waits for this commit, so none lands between the
        check and the commit. On SQLite this transaction holds the write lock (it wrote), so the row
        cannot change before it commits; a take-over writes its note first."""
        query = select(writer_lease).where(writer_lease.c.id == ROW)
        row = conn.execute(query.with_for_update(read=True) if self.postgres else query).first()
        if (row is not None and row.holder == holder and site(row.location) == site(where)
                and not self._taken_over(holder, where)):
            return None
        if row is None:
            return Lease("", "", 0, 0, _now_ms(conn))
        return Lease(row.holder, row.location, row.renewed_ms, row.expires_ms, _now_ms(conn))

    def release(self, holder: str, where: str) -> None:
        """End ``holder``'s lease (at ``where``'s site) now (a clean stop): the next writer
        starts at once."""
        with self._engine.begin() as conn:
            conn.execute(update(writer_lease).where(writer_lease.c.id == ROW, self._same_writer(holder, where))
                         .values(expires_ms=0))

    def hold_session(self) -> None:
        """Take the shared running lock until ``drop_session``: PostgreSQL's advisory lock on a
        connection of its own (outside the pool: one more connection per writer process),
        SQLite's flock on the lock file. Again after the connection was lost (``renew``)."""
        if self.postgres:
            if self._session is not None:
                return
            if self._session_engine is None:
                self._session_engine = create_engine(self._engine.url, poolclass=pool.NullPool,
                                                     connect_args=_connect_args(self._engine))
            session = self._session_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            session.execute(text("SELECT pg_advisory_lock_shared(:key)"), {"key": LOCK_KEY})
            self._session = session
        elif self._lock_path is not None and self._lockfile is None:
            lockfile = self._open_lock_file()
            fcntl.flock(lockfile, fcntl.LOCK_SH)  # waits only while a claimant's probe holds it (microseconds)
            self._lockfile = lockfile

    def drop_session(self) -> None:
        """Let go of the running lock (closing its connection or file drops it)."""
        if self._session is not None:
            try:
                self._session.close()
            finally:
                self._session = None
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    def renew(self, holder: str, where: str, seconds: float) -> bool:
        """Extend ``holder``'s lease at ``where``'s site (and hold the running lock again at once
        if it was lost: a PostgreSQL restart); False when another writer holds the lease now
        (it took over: on SQLite a note in the lock file tells so before the row can).

        On SQLite a renewal writes nothing while this process has a write transaction open, and
        one that meets the write lock (this writer's other process's import holds it) gives up
        after ``RENEW_WAIT_MS``; both return True: the lock file keeps the lease live."""
        if self.postgres:
            self._check_session()
        elif self._taken_over(holder, where):
            return False
        elif self._writing():
            # a commit between the first read and the first write of this process's (deferred)
            # transaction would fail it ("database is locked" at once: its snapshot is stale);
            # the lock file keeps the lease live meanwhile
            return True
        with self._engine.begin() as conn:
            if not self.postgres:
                wait = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                conn.exec_driver_sql(f"PRAGMA busy_timeout={RENEW_WAIT_MS}")
            now = _now_ms(conn)
            try:
                # only this writer's own row: an expired row of another writer means a take-over (or a
                # successor) came in meanwhile, which a renewal must never undo (a writer frozen by
                # SIGSTOP or a paused VM across a take-over whose new writer had not started yet)
                done = conn.execute(update(writer_lease).where(
                    writer_lease.c.id == ROW, self._same_writer(holder, where))
                    .values(holder=holder, location=where, renewed_ms=now, expires_ms=now + int(seconds * 1000)))
            except OperationalError as exc:
                if self.postgres or "locked" not in str(exc):
                    raise
                return True
            finally:
                if not self.postgres:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={wait}")
            return done.rowcount == 1

    def _check_session(self) -> None:
        """PostgreSQL: the advisory-lock session still answers, else a new one (one retry)."""
        try:
            self.hold_session()
            assert self._session is not None
            self._session.execute(text("SELECT 1"))
        except Exception:
            self.drop_session()  # lost (a restart): connect again now, not at the next renewal
            self.hold_session()


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
    return {} if "application_name=" in str(engine.url) else {"application_name": f"topicfeed/{os.getpid()}-lease"}
