"""Running a WSGI app under one of the supported HTTP servers: what ``topicfeed serve
--server`` chooses between, and what bench/server_bench.py measures side by side.

Every server gets the app as an import string of a factory (``module:function`` returning a
WSGI callable), because servers with worker processes import it in each worker. Process
model: ``workers`` processes (each with its own store connection pool and render cache)
times ``threads`` threads each; waitress and cheroot are one process. The render cache is
per process and thread-safe; writes commit in the store, and every process sees the new
store version within ``version_ttl`` seconds.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any

SERVERS = ("granian", "waitress", "gunicorn", "cheroot")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def load(target: str) -> WSGIApp:
    """Import ``module:factory`` and call the factory."""
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)()


def run(server: str, target: str, host: str, port: int, threads: int, workers: int) -> None:
    """Serve ``target`` until interrupted. Raises ``ValueError`` for an unknown server, or for
    several workers under a one-process server."""
    if server not in SERVERS:
        raise ValueError(f"--server must be one of {', '.join(SERVERS)}, got {server!r}")
    if workers > 1 and server in ("waitress", "cheroot"):
        raise ValueError(f"--workers: {server} runs one process; use --threads, or granian or gunicorn")
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        Granian(target, address=host, port=port, interface=Interfaces.WSGI, workers=workers,
                blocking_threads=threads, factory=True, log_access=False).serve()
    elif server == "waitress":
        import waitress

        waitress.serve(load(target), host=host, port=port, threads=threads, ident="topicfeed")
    elif server == "cheroot":
        from cheroot.wsgi import Server

        httpd = Server((host, port), load(target), numthreads=threads, server_name="topicfeed")
        try:
            httpd.start()
        finally:
            httpd.stop()
    else:
        _gunicorn(target, host, port, threads, workers)


def _gunicorn(target: str, host: str, port: int, threads: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                               "worker_class": "gthread", "accesslog": None}.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApp:
            return load(target)

    App().run()
