"""One log line per request (waitress logs none): client, method, path, status, bytes, time.

A line is one line whatever the request held: control characters, quotes and backslashes in
the method or path are escaped (``\\xNN``), so a CR/LF in a URL cannot forge a second entry.
Capabilities and readers' browsing are kept out of the log: the token of a private feed URL
and the values of the lookup parameters ``url`` and ``prefix`` are replaced by ``REDACTED``.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger("topicfeed.access")

REDACTED = "REDACTED"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')
# any segment after a /private/ folder, wherever it sits: `/feeds//private/T.atom` (redirected)
# and `/feeds/private/T.atom/` (a typo) carry a working token too
_PRIVATE_FEED = re.compile(r"(/private/+)[^/]*?(\.[a-z]+)?(?=/|$)")
_SECRET_KEYS = frozenset({"url", "prefix"})
_QUERY_PART = re.compile(r"([^&;=]*)(=?)([^&;]*)")


def escape(text: str) -> str:
    """``text`` with every control character, ``"`` and ``\\`` as ``\\xNN``: one printable line."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def loggable_target(path: str, query: str) -> str:
    """The request target as logged: private feed tokens and lookup values redacted, escaped."""
    path = _PRIVATE_FEED.sub(lambda m: m.group(1) + REDACTED + (m.group(2) or ""), path)
    if query:
        path += "?" + _QUERY_PART.sub(_redact_param, query)
    return escape(path)


def _redact_param(part: re.Match[str]) -> str:
    """One ``key=value`` of the query, its value redacted when the key, decoded as the app
    decodes it (``%75rl`` is ``url``), names a lookup parameter."""
    key, equals, value = part.groups()
    return key + equals + (REDACTED if equals and unquote_plus(key).lower() in _SECRET_KEYS else value)


class RequestLog:
    """WSGI middleware; the query string is logged (redacted), request bodies and headers are not."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status_holder: list[str] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        size = 0
        try:
            for chunk in self.app(environ, capture):
                size += len(chunk)
                yield chunk
        finally:
            target = loggable_target(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
            log.info('%s "%s %s" %s %d %.1fms', escape(environ.get("REMOTE_ADDR", "-")),
                     escape(environ.get("REQUEST_METHOD", "-")), target,
                     status_holder[0] if status_holder else "-", size, (time.perf_counter() - started) * 1000)
