"""One log line per request (waitress logs none): client, method, path, status, bytes, time."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("topicfeed.access")


class RequestLog:
    """WSGI middleware; the query string is logged, request bodies and headers are not."""

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
            path = environ.get("PATH_INFO", "")
            if environ.get("QUERY_STRING"):
                path += "?" + environ["QUERY_STRING"]
            log.info('%s "%s %s" %s %d %.1fms', environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD"),
                     path, status_holder[0] if status_holder else "-", size, (time.perf_counter() - started) * 1000)
