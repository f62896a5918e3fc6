"""Running a WSGI app under one of the supported HTTP servers: what ``topicfeed serve
--server`` chooses between, and what bench/server_bench.py measures side by side.

Every server gets the app as an import string of a factory (``module:function`` returning a
WSGI callable), because servers with worker processes import it in each worker. Process
model: ``workers`` processes (each with its own store connection pool and render cache)
times ``threads`` threads each; waitress and cheroot are one process. The render cache is
per process and thread-safe; writes commit in the store, and every process sees the new
store version within ``version_ttl`` seconds. Background work that must run once per server
(the WebSub worker) runs in the one serving process that holds its lock (``claim``).
"""
from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

SERVERS = ("granian", "waitress", "gunicorn", "cheroot")
# Threads per process when --threads is not given. granian's threads only run Python (its Rust
# runtime reads and writes the sockets): two keep one core busy without the GIL hand-offs that
# cost 8 threads most of their throughput under slow clients on one core (bench/RESULTS.md).
# The Python servers' threads also do the socket I/O, so they need more.
ONE_PROCESS = ("waitress", "cheroot")  # servers that run the app in the process that calls ``run``
SUPERVISOR_ENV = "TOPICFEED_SERVER_PID"  # set by `run`: the pid of the process that supervises the workers
DEFAULT_THREADS = {"granian": 2, "waitress": 8, "gunicorn": 8, "cheroot": 8}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Limits:
    """Server-neutral edge limits (settings ``connection_limit``, ``header_timeout``,
    ``max_header_bytes``, ``max_body_bytes``), mapped onto each server by ``run``. The body
    limit is also Flask's ``MAX_CONTENT_LENGTH`` (413 from the Content-Length, before reading)."""

    connections: int = 500
    header_timeout: int = 30  # seconds
    header_bytes: int = 32 * 1024
    body_bytes: int = 256 * 1024

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Limits:
        """From an app's config; settings it does not have keep their defaults."""
        names = {"connections": "CONNECTION_LIMIT", "header_timeout": "HEADER_TIMEOUT",
                 "header_bytes": "MAX_HEADER_BYTES", "body_bytes": "MAX_BODY_BYTES"}
        return cls(**{k: config[v] for k, v in names.items() if v in config})


def claim(lock: Path, retry_seconds: float, start: Callable[[], object]) -> threading.Thread:
    """Call ``start`` in one process of the server at a time: the one holding an exclusive
    ``flock`` on ``lock``. Every serving process calls this (``server.cli.wsgi_app``); the
    others try again every ``retry_seconds`` on a daemon thread, so when the holder ends (the
    kernel drops its lock) another process takes over. The lock stays held for the process's
    life. Returns the thread that waits for the lock.

    A lock on one machine: processes on other machines sharing the database are kept apart by
    the store's own claims (``WebSubStore.claim`` leases, ``record_change``'s compare-and-set)."""
    def wait_for_the_lock() -> None:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)  # never closed: closing would drop the lock
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(retry_seconds)
                continue
            start()
            return

    thread = threading.Thread(target=wait_for_the_lock, name=f"claim-{lock.name}", daemon=True)
    thread.start()
    return thread


def load(target: str) -> WSGIApp:
    """Import ``module:factory`` and call the factory."""
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)()


def run(server: str, target: str, host: str, port: int, threads: int, workers: int,
        limits: Limits | None = None) -> None:
    """Serve ``target`` until interrupted. Raises ``ValueError`` for an unknown server, or for
    several workers under a one-process server."""
    limits = limits or Limits()
    # the process that will supervise the workers (granian replaces this one, gunicorn's master
    # is this one): a worker dies with it (``server.cli.wsgi_app``) instead of serving on as an
    # orphan that keeps the port, and the database connections, after a `kill -9`
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    if server not in SERVERS:
        raise ValueError(f"--server must be one of {', '.join(SERVERS)}, got {server!r}")
    if workers > 1 and server in ONE_PROCESS:
        raise ValueError(f"--workers: {server} runs one process; use --threads, or granian or gunicorn")
    if server == "granian":
        # Replace this process with granian's own command line: its supervisor then holds only
        # granian (about 15 MB), not the app this process may have loaded; workers import the app.
        # glibc gives every thread that allocates its own malloc arena (up to 8 per core): with
        # granian's runtime threads that grew the worker by about 15 MB under load; two suffice.
        env = {"MALLOC_ARENA_MAX": "2", **os.environ}
        os.execve(sys.executable, [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory",
                                  "--host", host, "--port", str(port), "--workers", str(workers),
                                  "--blocking-threads", str(threads), "--no-ws", "--no-access-log",
                                  # a worker that dies is replaced (another then claims the WebSub worker)
                                  "--respawn-failed-workers",
                                  # granian has no cap on open connections: it bounds the requests a
                                  # worker takes at once; connections still sending headers are Rust
                                  # tasks bounded by the header timeout and size below
                                  "--backpressure", str(max(1, limits.connections // workers)),
                                  "--http1-header-read-timeout", str(limits.header_timeout * 1000),
                                  "--http1-buffer-size", str(max(8192, limits.header_bytes)), target], env)
    elif server == "waitress":
        import waitress

        # waitress reads headers and bodies in its event loop, not in worker threads: slow clients
        # only cost a connection slot, and a Content-Length above the body limit is answered 413
        # as soon as the headers are parsed, before any of the body is buffered.
        waitress.create_server(load(target), host=host, port=port, threads=threads, ident="topicfeed",
                               connection_limit=limits.connections, channel_timeout=limits.header_timeout,
                               cleanup_interval=max(1, min(30, limits.header_timeout // 2)),
                               max_request_header_size=limits.header_bytes,
                               max_request_body_size=limits.body_bytes).run()
    elif server == "cheroot":
        from cheroot.wsgi import Server

        httpd = Server((host, port), load(target), numthreads=threads, server_name="topicfeed",
                       timeout=limits.header_timeout, request_queue_size=min(limits.connections, 1024))
        httpd.max_request_header_size, httpd.max_request_body_size = limits.header_bytes, limits.body_bytes
        try:
            httpd.start()
        finally:
            httpd.stop()
    else:
        _gunicorn(target, host, port, threads, workers, limits)


def _gunicorn(target: str, host: str, port: int, threads: int, workers: int, limits: Limits) -> None:
    from gunicorn.app.base import BaseApplication

    class App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                               "worker_class": "gthread", "accesslog": None,
                               "worker_connections": max(1, limits.connections // workers),
                               "keepalive": limits.header_timeout,
                               "limit_request_field_size": limits.header_bytes}.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApp:
            return load(target)

    App().run()
