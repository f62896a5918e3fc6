"""The one WSGI layer in front of Flask (``app.wsgi_app``): it fixes the environ for proxies
(``server.edge.proxy_fix``), answers what the fast path has recorded (``server.fastpath``),
counts every answer for /metrics by route family and status (``server.metrics``), and, once
``log_requests`` is called (``topicfeed serve``), writes one access-log line per request
(``server.requestlog``).

These used to be four nested WSGI wrappers, each wrapping ``start_response`` again: for a cached
feed they cost about 17 µs of CPU per request against 0.4 µs for a raw WSGI callable returning
the same bytes (bench/wsgi_overhead.py). A fast-path answer now takes one call here, with a
plain integer count and a queued log line. Anything else goes down the slow path: the
app, with its answers recorded for the fast path, counted, and logged.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from . import edge, fastpath
from .metrics import REQUEST_COUNTS
from .requestlog import RequestLog, _Lines, _write

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _counting(inner: WSGIApp) -> WSGIApp:
    """``inner``, with every answer counted when it starts (errors escaping Flask's handlers too),
    under the route family ``server.metrics`` put in the environ."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def counted(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            REQUEST_COUNTS.inc((environ.get(fastpath.FAMILY, "unmatched"), status[:3]))
            return start_response(status, headers, exc_info)

        return inner(environ, counted)

    return app


class Front:
    """The app's WSGI entry; made by ``install``."""

    def __init__(self, app: Flask) -> None:
        self.fix = edge.proxy_fix(app)
        self.fast = fastpath.of(app)
        inner: WSGIApp = app.wsgi_app
        if self.fast is not None:
            inner = self.fast.recording(inner)
        self.slow: WSGIApp = _counting(inner)
        self.logging = False
        self.lines: _Lines | None = None

    def log_requests(self) -> None:
        """Write an access-log line for every request from now on (call after logging is set up:
        the way lines are written is chosen here, ``server.requestlog``)."""
        if not self.logging:
            logged = RequestLog(self.slow)
            self.slow, self.lines, self.logging = logged, logged.lines, True

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        if self.fix is not None:
            self.fix(environ)
        if self.fast is not None:
            hit = self.fast.answer(environ)
            if hit is not None:
                status, headers, labels, body = hit
                REQUEST_COUNTS.inc(labels)
                start_response(status, headers)
                if self.logging:
                    _write(self.lines, environ, labels[1], len(body[0]), started)
                return body
        return self.slow(environ, start_response)


def install(app: Flask) -> None:
    """Put the front layer in front of the app's routing (after every other ``init_app``)."""
    app.wsgi_app = app.extensions["topicfeed.front"] = Front(app)  # type: ignore[method-assign]


def of(app: Flask) -> Front:
    """The app's front layer (``log_requests`` turns the access log on)."""
    return app.extensions["topicfeed.front"]
