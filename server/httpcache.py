"""HTTP caching for rendered documents: an in-process LRU keyed by route, parameters and
store version; strong ETags, Last-Modified, 304s (Werkzeug's conditional helpers) and gzip."""
from __future__ import annotations

import functools
import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Response, current_app, request
from werkzeug.http import http_date, is_resource_modified, parse_accept_header, quote_etag

from feeds.store import Store


@dataclass(frozen=True)
class Rendered:
    """A rendered document with its validators, ready to answer any conditional request."""

    body: bytes
    gzipped: bytes
    etag: str
    content_type: str
    last_modified: datetime | None

    @classmethod
    def of(cls, body: bytes, content_type: str, last_modified: datetime | None) -> Rendered:
        return cls(body, gzip.compress(body, 6, mtime=0), hashlib.sha256(body).hexdigest()[:32],
                   content_type, last_modified)

    def headers(self, compressed: bool, max_age: int) -> list[tuple[str, str]]:
        """Response headers, built once per variant (this is the hot path of every poll).

        A ``last_modified`` still ahead of the clock (a feed changed several times in one
        second: ``feeds.store.changes``) is sent as now, uncached: RFC 9110 §8.8.2.1 forbids a
        future date, and the stored time is what later polls compare against."""
        now = time.time()
        if self.last_modified and self.last_modified.timestamp() > now:
            return self._build(compressed, max_age, datetime.fromtimestamp(int(now), timezone.utc))
        cache = self.__dict__.setdefault("_headers", {})
        key = (compressed, max_age)
        if key not in cache:
            cache[key] = self._build(compressed, max_age, self.last_modified)
        return cache[key]

    def _build(self, compressed: bool, max_age: int, last_modified: datetime | None) -> list[tuple[str, str]]:
        headers = [("ETag", quote_etag(self.etag + ("-gz" if compressed else ""))),
                   ("Cache-Control", f"public, max-age={max_age}"), ("Vary", "Accept-Encoding")]
        if last_modified:
            headers.append(("Last-Modified", http_date(last_modified)))
        if compressed:
            headers.append(("Content-Encoding", "gzip"))
        return headers


class RenderCache:
    """Bounded LRU shared by the threads of one process."""

    def __init__(self, store: Store, entries: int, version_ttl: float) -> None:
        self.store, self.entries, self.version_ttl = store, entries, version_ttl
        self._items: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._lock = threading.Lock()
        self._version: tuple[float, str] = (0.0, "")
        self.on_lookup: Callable[[bool], None] = lambda hit: None  # /metrics counts hits and misses

    def version(self) -> str:
        """The store version, re-read at most every ``version_ttl`` seconds."""
        checked, value = self._version
        now = time.monotonic()
        if now - checked >= self.version_ttl:
            value = self.store.version()
            self._version = (now, value)
        return value

    def invalidate(self) -> None:
        """Forget the version reading (after a write made by this process)."""
        self._version = (0.0, "")

    def get(self, key: Hashable, build: Callable[[], Rendered]) -> Rendered:
        full_key = (self.version(), key)
        with self._lock:
            hit = self._items.get(full_key)
            if hit is not None:
                self._items.move_to_end(full_key)
        self.on_lookup(hit is not None)
        if hit is not None:
            return hit
        rendered = build()
        if rendered.last_modified and rendered.last_modified.timestamp() > time.time():
            # a burst of writes ran the feed's stored time ahead of the clock; this render shows
            # the clock instead (``FeedSpec.updated``), so keeping it would serve that date after
            # the clock passes and differ from any later render of the same data
            return rendered
        with self._lock:
            self._items[full_key] = rendered
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return rendered


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip (RFC 9110 §12.5.3: ``gzip;q=0`` and
    ``*;q=0`` without gzip mean no). Cached: readers send a handful of distinct values."""
    return parse_accept_header(accept_encoding).quality("gzip") > 0


def respond(doc: Rendered, max_age: int | None = None) -> Response:
    """A conditional GET/HEAD response: 304 when a validator matches, gzip when accepted.

    Headers are built directly (not through Response properties): this is the hot path of
    every reader poll.
    """
    environ = request.environ
    compress = len(doc.body) > 256 and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    headers = doc.headers(compress, current_app.config["CACHE_MAX_AGE"] if max_age is None else max_age)
    conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ
    if conditional and not is_resource_modified(environ, etag=headers[0][1].strip('"'), last_modified=doc.last_modified):
        return Response(status=304, headers=[h for h in headers if h[0] != "Content-Encoding"])
    return Response(doc.gzipped if compress else doc.body, headers=headers, content_type=doc.content_type)

