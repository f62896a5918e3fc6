"""The HTTP edge as the app sees it: request-wide input rules, security headers, trusted
``Host`` values, and proxy headers (werkzeug's ``ProxyFix``) when the operator says how many
proxies are in front.

A NUL character (``%00``) is refused in the path and in every query parameter: no slug, id,
domain or search term contains one, and PostgreSQL text cannot hold it (psycopg raises
``DataError``), so letting it reach a query answered 500 on PostgreSQL and 404 on SQLite.
Refusing it here gives one answer, 400 naming where it was, on both backends.

The server-neutral connection, header and body limits are applied by the HTTP server that
``topicfeed serve`` runs (``server.serving.Limits``), so slow or huge requests are refused before
they reach a worker thread or are buffered.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from feeds.errors import QueryError

# The HTML index needs its own inline <style> and nothing else: no scripts at all, no framing
# (clickjacking, also X-Frame-Options for older browsers), no referrer leaking feed URLs.
HTML_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def security_headers(resp: Response) -> Response:
    """``after_request``: ``nosniff`` on every answer (feeds are never sniffed into HTML);
    CSP, ``X-Frame-Options`` and ``Referrer-Policy`` on HTML."""
    resp.headers["X-Content-Type-Options"] = "nosniff"
    if resp.mimetype == "text/html":
        resp.headers.setdefault("Content-Security-Policy", HTML_CSP)
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
    return resp


def refuse_nul() -> None:
    """``before_request``: 400 for a NUL character in the path or any query parameter."""
    if "\x00" in request.path:
        raise QueryError("path", "the URL path contains a NUL character (%00)")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise QueryError(name.replace("\x00", "\\x00")[:40],
                             f"parameter {name[:40]!r} contains a NUL character (%00)")


def refuse_large_body() -> None:
    """``before_request``: 413 for a ``Content-Length`` above ``max_body_bytes`` on every route,
    before anything reads the body. Flask checks it only when a view reads the body, and not
    every server refuses it itself (granian does not; waitress does), so a POST to a GET-only
    URL would otherwise get 405 from one server and 413 from another."""
    length = request.content_length
    if length is not None and length > current_app.config["MAX_CONTENT_LENGTH"]:
        raise RequestEntityTooLarge()


def check_host() -> None:
    """``before_request``: reading ``request.host`` makes Flask check it against
    ``TRUSTED_HOSTS`` (400 for any other host), before a forged host reaches links or caches."""
    request.host  # noqa: B018 - the property raises SecurityError (400) for an untrusted host


def init_app(app: Flask) -> None:
    """Wire the headers and the host check from the app's settings (``ProxyFix``: ``proxy_fix``)."""
    # Flask reads the same key; an empty list would make every host untrusted there, None = any
    app.config["TRUSTED_HOSTS"] = app.config["TRUSTED_HOSTS"] or None
    if app.config["TRUSTED_HOSTS"]:
        app.before_request(check_host)
    app.before_request(refuse_large_body)
    app.before_request(refuse_nul)
    app.after_request(security_headers)


def proxy_fix(app: Flask) -> Callable[[dict[str, Any]], None] | None:
    """What ``server.front`` calls first on every request when ``proxy_fix_hops`` is set: the
    environ rewritten in place by werkzeug's ``ProxyFix`` (client address, scheme, host and port
    from that many proxies' ``X-Forwarded-*`` headers; the originals kept under
    ``werkzeug.proxy_fix.orig``). None without proxies."""
    hops = app.config["PROXY_FIX_HOPS"]
    if not hops:
        return None
    fix = ProxyFix(lambda environ, start_response: None, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    return lambda environ: fix(environ, _no_response)


def _no_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    """``ProxyFix`` only rewrites the environ here: nothing answers through it."""

