"""Answers to repeated requests for cached public documents (feeds, the OPML list, the HTML
index) and their 304s without routing, views or a Response: ``server.front``, the WSGI layer in
front of Flask, asks ``FastPath.answer`` first and wraps the app in ``FastPath.recording``.

The app stays the only source of answers: when a public view answers from the render cache,
``server.httpcache.respond`` marks the request, and this layer records the status and headers
the app sent for that request key (path plus normalised query) and variant (method, gzip,
304). A later request with the same key, in the same store version, gets those headers and the
cached body verbatim. Anything else goes to the app: unknown keys, other methods, the API,
private feed URLs (their token is checked on every request, so a revoked client stops at
once), and a ``Host`` the app has not answered before (so host validation stays the app's).

It runs only with ``public_base_url`` set: the documents' self links then do not depend on the
request's ``Host``, so one cached document serves every accepted host and forged hosts cannot
multiply the cache's entries.

Per request it does as little as it can (bench/wsgi_overhead.py measures it): no query parsing
for a URL without a query (a parsed query is cached by its raw text), a 304 decided by
comparing ``If-None-Match`` with the one ETag that matches before Werkzeug's general parser
is asked, and the status and header list the app sent handed to the server as they are.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask

from .context import render_cache
from .httpcache import FAST_PATH_MARK, Rendered, accepts_gzip, decide

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FAMILY = "topicfeed.family"  # environ key: the route family ``server.metrics`` counts an answer under
MAX_HOSTS = 16  # Host values remembered as accepted by the app (more go the slow path)
_BYPASS = ("/api", "/feeds/private/")
_EXTENSION = "topicfeed.fastpath"


@functools.lru_cache(maxsize=1024)
def _normalised(query: str) -> tuple[tuple[str, str], ...]:
    """A raw query string's parameters, sorted by name (cached: readers repeat a few queries)."""
    return tuple(sorted(parse_qsl(query, keep_blank_values=True), key=itemgetter(0)))


def quick_decide(doc: Rendered, environ: dict[str, Any]) -> tuple[bool, bool]:
    """``httpcache.decide``, with its two commonest answers found without parsing: no
    validator at all (not modified: no), and ``If-None-Match`` holding exactly the ETag of the
    chosen encoding with no ``If-Match`` (not modified: yes, whatever ``If-Modified-Since``
    says, RFC 9110 §13.1.3). Anything else is ``decide``'s to answer."""
    compress = len(doc.body) > 256 and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    none_match = environ.get("HTTP_IF_NONE_MATCH")
    if none_match is None and "HTTP_IF_MODIFIED_SINCE" not in environ:
        return compress, False
    if none_match == doc.quoted_etags[compress] and "HTTP_IF_MATCH" not in environ:
        return compress, True
    return decide(doc, environ)


class FastPath:
    """The lookup ``server.front`` asks first, and the recorder around the app; made by ``install``."""

    def __init__(self, app: Flask) -> None:
        self.cache = render_cache(app)
        self.hosts: set[str] = set()
        self.hits = 0  # answers given without the app (approximate under threads; for tests and benches)

    def answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], tuple[str, str], list[bytes]] | None:
        """(status, headers, /metrics labels, body) the app gave for this request before, or None
        when the app must answer. The labels are the route family and status the app's answer
        was counted under; the body is empty for HEAD and 304."""
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return None
        path = environ.get("PATH_INFO", "")
        if path.startswith(_BYPASS) or environ.get("HTTP_HOST", "") not in self.hosts:
            return None
        query = environ.get("QUERY_STRING", "")
        # (path, query parameters sorted by name): a stable sort keeps repeated names in order,
        # since the app reads the first of them
        entry = self.cache.reply((path, _normalised(query) if query else ()))
        if entry is None:
            return None
        compress, not_modified = quick_decide(entry.rendered, environ)
        reply = entry.replies.get((method, compress, not_modified))
        if reply is None:
            return None
        self.hits += 1
        self.cache.on_lookup(True)  # counted by /metrics like the app's answer: a cache hit
        if method == "HEAD" or not_modified:
            return (*reply, [b""])
        return (*reply, [entry.rendered.gzipped if compress else entry.rendered.body])

    def recording(self, inner: WSGIApp) -> WSGIApp:
        """``inner`` (the app), with the status and headers of its cacheable answers recorded."""
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                return inner(environ, start_response)
            query = environ.get("QUERY_STRING", "")
            key = (environ.get("PATH_INFO", ""), _normalised(query) if query else ())
            return inner(environ, self._recorder(environ, key, start_response))

        return app

    def _recorder(self, environ: dict[str, Any], key: Any, start_response: Callable[..., Any]) -> Callable[..., Any]:
        def record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            mark = environ.get(FAST_PATH_MARK)
            if mark is not None and exc_info is None and status[:3] in ("200", "304"):
                cache_key, rendered, variant = mark
                self.cache.remember(key, cache_key, rendered, variant, status, headers, environ.get(FAMILY))
                if len(self.hosts) < MAX_HOSTS:
                    self.hosts.add(environ.get("HTTP_HOST", ""))
            return start_response(status, headers, exc_info)

        return record


def install(app: Flask) -> None:
    """Make the app's fast path when ``public_base_url`` is set (``server.front`` asks it)."""
    if app.config["PUBLIC_BASE_URL"]:
        app.extensions[_EXTENSION] = FastPath(app)


def of(app: Flask) -> FastPath | None:
    """The app's fast path, None when it runs without one."""
    return app.extensions.get(_EXTENSION)
