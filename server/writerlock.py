"""One writer per database (README "Scaling out"): the writer lease, seen from a process.

A writer's identity is its instance folder's id (``instance-id``, made once, kept with the
folder) *at its host and folder*: the server and an import on the same instance folder are the
same writer; another instance folder — another machine's disk, with other record files — is
another writer, and so is a copy of the folder elsewhere (a restore on a second machine). Every
process of role ``single`` or ``writer`` claims the lease when it starts (``create_app``, the
import), and the long-running ones (``serve``, ``import``/``import --watch``) hold the running
lock and renew the lease every third of ``writer_lease_seconds`` (``hold``). A process of another
writer is refused in one line naming the current writer and how to take over, while a process
of the writer runs, and otherwise until the writer missed a renewal (``feeds.store.lease``), or
after an explicit ``topicfeed writer take-over`` on the new writer's instance. A writer whose
lease was taken over refuses writes from its next renewal on (``lost``): its store's fence stops
every write transaction, an import in progress included (rolled back). Readers never claim.

The store's SQL is in ``feeds.store.lease``; this module names instances and keeps the lease.
"""
from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
import secrets
import socket
import threading
from multiprocessing import util as mp_util
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from feeds.atomic import create_atomic
from feeds.store import Lease, Store, WriterFenced
from feeds.store.lease import site as lease_site

from .instance import ID_FILE

log = logging.getLogger(__name__)
# Every process of a writer instance (its server's, an import) holds a shared flock(2) on this file
# in the instance folder while it runs: a clean exit ends the lease only when it is the last one,
# so a server restarted beside a running `import --watch`, or a one-off command on the writer's
# folder, neither ends the lease under a running process nor keeps it after the last one
RUNNING_FILE = ".writer-running"


class WriterBusy(RuntimeError):
    """Another writer holds the lease: the one-line message names it and how to take over."""


_ID = re.compile(rb"[0-9a-f]{16}")  # what instance_id makes: secrets.token_hex(8)


def instance_id(instance: Path) -> str:
    """The instance folder's writer id (16 hex digits), made on first use: several processes
    starting together on one folder all read the one that was created first.

    Raises ``ValueError`` (one line naming the file) when the file holds anything else: an
    empty id would be the free lease's holder (``""``), so every such instance would count as
    the writer, and a garbled one would make a different writer of a restored instance."""
    path = instance / ID_FILE
    create_atomic(path, (secrets.token_hex(8) + "\n").encode(), 0o644)
    found = path.read_bytes().strip()
    if not _ID.fullmatch(found):
        raise ValueError(f"{path}: must hold the 16 hex digits topicfeed made (the writer's identity), found "
                         f"{found[:40]!r}: restore it from this instance's backup, or delete it to make this "
                         "instance a new writer")
    return found.decode("ascii")


def _open_running(instance: Path) -> IO[bytes]:
    """``RUNNING_FILE`` opened for reading (enough for flock(2)), made readable by every user
    whatever the umask: a command run as root first must not lock the service's user out."""
    fd = os.open(instance / RUNNING_FILE, os.O_RDONLY | os.O_CREAT, 0o644)
    if os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, 0o644)
    return os.fdopen(fd, "rb")


@functools.cache
def _host() -> str:
    """This machine's host name as this process first saw it: a rename while it runs (DHCP,
    ``hostnamectl set-hostname``) must not make a running writer another writer, which its next
    renewal would take for a take-over (and so refuse writes)."""
    return socket.gethostname()


def location(instance: Path) -> str:
    """Where this process runs: ``host:/instance/folder pid N``, the folder resolved (every
    process of one instance folder names it alike). Host and folder are part of the writer's
    identity (``feeds.store.lease``): a copy of the folder elsewhere is not the running writer."""
    return f"{_host()}:{instance.resolve()} pid {os.getpid()}"


def this_writer(lease: Lease, instance: Path) -> bool:
    """Whether ``lease`` is ``instance``'s at this host and folder (not a copy's elsewhere).
    Raises ``ValueError`` for a bad ``instance-id`` (``instance_id``)."""
    return lease.holder == instance_id(instance) and lease_site(lease.where) == lease_site(location(instance))


def describe(lease: Lease) -> str:
    """``instance 3f2a… at host:/srv/instance pid 12, lease ends in 25 s`` (or ``ended 3 s ago``)."""
    left = (lease.expires_ms - lease.now_ms) / 1000
    when = f"lease ends in {left:.0f} s" if left > 0 else f"lease ended {-left:.0f} s ago"
    if lease.expires_ms == 0:  # LeaseStore.release: no time to tell
        when = "lease released (it stopped cleanly)"
    elif left <= 0 and lease.running:  # SQLite: its long import holds the write lock, the lock file says it runs
        when = f"last renewed {(lease.now_ms - lease.renewed_ms) / 1000:.0f} s ago, still running"
    return f"instance {lease.holder} at {lease.where}, {when}"


def busy(lease: Lease, instance: Path) -> str:
    """The one-line refusal of a writer ``instance`` while ``lease`` is another writer's (or
    its own instance id's at another host or folder: a copy of its folder)."""
    copy = ("; it has this instance's id: a copy of this folder (a restore?) runs there: stop it first"
            if lease.holder == instance_id(instance) else "")
    return (f"another writer holds this database ({describe(lease)}{copy}): one writer per database "
            f"(README \"Scaling out\"); stop it, wait for its lease to end, or, if it is gone for good, "
            f"run `topicfeed writer take-over --instance {instance}`")


class WriterLease:
    """The lease as one process of one writer instance holds it."""

    def __init__(self, store: Store, instance: Path, seconds: float) -> None:
        self.store, self.instance, self.seconds = store, instance, seconds
        self.id = instance_id(instance)
        self.lost = threading.Event()  # set when another writer took the lease over
        self.taken_by = ""  # then: who (``describe``, or ``instance <id>``)
        self._renewing = threading.Lock()  # the renewal thread's and a caller's ``held``
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_lost: Callable[[], None] | None = None
        self._running: IO[bytes] | None = None  # shared flock on RUNNING_FILE while this process runs

    def claim(self, force: bool = False) -> Lease:
        """Hold the lease for ``seconds`` from now; ``WriterBusy`` when another writer holds it
        (unless ``force``: ``topicfeed writer take-over``)."""
        lease = self.store.lease.claim(self.id, location(self.instance), self.seconds, force=force)
        if not this_writer(lease, self.instance):  # another's, or a copy's of this folder elsewhere
            raise WriterBusy(busy(lease, self.instance))
        if self._running is None:
            self._running = _open_running(self.instance)
            fcntl.flock(self._running, fcntl.LOCK_SH)  # waits only while a sibling's exit probes (below)
        return lease

    def hold(self, on_lost: Callable[[], None] | None = None) -> None:
        """Claim, then renew every third of the lease on a daemon thread until ``stop`` (on
        PostgreSQL holding the advisory-lock session too). When another writer took over,
        ``lost`` is set, renewals end and ``on_lost`` is called (e.g. to stop a watch; a later call
        may name it for a lease already held)."""
        if on_lost is not None:
            self._on_lost = on_lost
        self.claim()
        self.store.lease.hold_session()
        self.store.fence = self.lost  # every write transaction of this process stops once it is set
        self.store.confirm = self._confirm  # and checks the lease itself before it commits
        if self._thread is not None:
            return

        def renew() -> None:
            while not self._stop.wait(self.seconds / 3):
                if not self.held():
                    return

        self._thread = threading.Thread(target=renew, name="writer-lease", daemon=True)
        self._thread.start()

    def held(self) -> bool:
        """Renew now (the renewal thread's step): False once another writer took over, and then
        ``lost`` is set and ``on_lost`` called. Also for a write that failed in a way a take-over
        explains (SQLite: "database is locked" when one committed between an import's first
        read and its first write, before the renewal thread saw it)."""
        with self._renewing:
            if self.lost.is_set():
                return False
            try:
                if self.store.lease.renew(self.id, location(self.instance), self.seconds):
                    return True
            except Exception as exc:  # the database briefly unreachable: the lease has two more tries
                log.warning("writer lease: renewal failed: %.200s", " ".join(str(exc).split()))
                return True
            self._mark_lost(self.store.lease.current())
        if self._on_lost is not None:
            self._on_lost()
        return False

    def _mark_lost(self, lease: Lease | None) -> None:
        """Record the take-over (under ``_renewing``): who took it, the log line, ``lost``, and the
        PostgreSQL session let go."""
        taker = self.store.lease.taker  # SQLite: the row changes once this writer's import let go
        self.taken_by = f"instance {taker}" if taker else describe(lease) if lease else "another writer"
        log.error("writer lease: taken over by another writer (%s); this process refuses writes from now on",
                  self.taken_by)
        self.lost.set()
        self.store.lease.drop_session()

    def _confirm(self, conn: Any) -> None:
        """``Store.confirm``: the last step of each write transaction of this process (``conn``, its
        connection, is only handed back to the store: the server layer touches no SQL). Raises
        ``WriterFenced`` (the transaction rolls back), after doing what a renewal that found the
        take-over does, when another writer holds the lease now."""
        lease = self.store.lease.still_mine(conn, self.id, location(self.instance))
        if lease is None:
            return
        with self._renewing:
            if not self.lost.is_set():
                self._mark_lost(lease)
        if self._on_lost is not None:
            self._on_lost()
        raise WriterFenced("another writer took the writer lease over: this process writes no more")

    def stop(self) -> None:
        """End the renewals and the running lock (the lease itself runs out on its own)."""
        self._end_renewals()
        self.store.lease.drop_session()

    def _end_renewals(self) -> None:
        """Stop the renewal thread and wait for a renewal in progress (a bounded wait for the
        write lock): one finishing after a release would make the released lease live again."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def release_at_exit(self) -> None:
        """On a clean exit of this process, end the lease at once so that a successor need not
        wait (a killed process cannot: it is replaced once it missed a renewal, see feeds.store.lease)."""
        def release() -> None:
            self._end_renewals()
            try:
                if self.lost.is_set() or not self._last_of_this_writer():
                    return  # taken over, or this writer's server or import still runs and renews it
                try:
                    self.store.lease.release(self.id, location(self.instance))
                except Exception as exc:  # exiting anyway: the lease will run out
                    log.warning("writer lease: not released: %.200s", " ".join(str(exc).split()))
                finally:
                    self._close_running()
            finally:  # the running lock last: until the row says released, this writer runs
                self.store.lease.drop_session()

        # multiprocessing runs finalizers with a priority at the exit of the main process (its
        # atexit hook) and of its child processes, which end with os._exit and skip atexit
        # hooks: granian's workers are such children
        mp_util.Finalize(None, release, exitpriority=10)

    def _last_of_this_writer(self) -> bool:
        """Whether no other process of this instance holds RUNNING_FILE (its server's, an import's),
        checked by taking it exclusively; kept so until the lease is released. A worker that forked
        with this process's open file shares its lock: then the answer is False, rightly."""
        self._close_running()
        probe = _open_running(self.instance)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            probe.close()
            return False
        self._running = probe
        return True

    def _close_running(self) -> None:
        if self._running is not None:
            self._running.close()  # closing the file drops its lock
            self._running = None
