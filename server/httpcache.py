"""HTTP caching for rendered documents: an in-process LRU bounded by bytes, keyed by route,
parameters and store version; strong ETags, Last-Modified, 304s (Werkzeug's conditional
helpers) and gzip."""
from __future__ import annotations

import functools
import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

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


@dataclass
class _Entry:
    """A cached document, the exact replies the app sent for it (by method, gzip, 304) and the
    request keys the fast path knows it under."""

    rendered: Rendered
    size: int
    replies: dict[tuple[str, bool, bool], tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)
    aliases: list[Hashable] = field(default_factory=list)
    family: str | None = None  # the route family /metrics counted the app's answer under


class RenderCache:
    """Rendered documents of one process, valid for one store version, bounded by bytes (bodies
    plus their gzip copies) with least-recently-used eviction. Shared by the process's threads:
    concurrent misses for one document render it once, the others wait for that rendering.

    It also serves ``server.fastpath``: a request key (path, normalised query) maps to the
    document the app answered with, together with the status and headers it sent.
    """

    ENTRY_OVERHEAD = 1024  # bytes counted per entry for its key, headers and bookkeeping

    def __init__(self, store: Store, max_bytes: int, version_ttl: float) -> None:
        self.store, self.max_bytes, self.version_ttl = store, max_bytes, version_ttl
        self._items: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._aliases: dict[Hashable, Hashable] = {}
        self._building: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self._version: tuple[float, str] = (0.0, "")
        self.on_lookup: Callable[[bool], None] = lambda hit: None  # /metrics counts hits and misses
        self._bytes = 0
        self._held_version = ""

    @property
    def size(self) -> int:
        """Bytes currently counted against ``max_bytes``."""
        return self._bytes

    def version(self) -> str:
        """The store version, re-read at most every ``version_ttl`` seconds; a new one empties
        the cache (every document was rendered from the old data)."""
        checked, value = self._version
        now = time.monotonic()
        if now - checked >= self.version_ttl:
            value = self.store.version()
            self._version = (now, value)
        if value != self._held_version:
            with self._lock:
                if value != self._held_version:
                    self._items.clear()
                    self._aliases.clear()
                    self._bytes, self._held_version = 0, value
        return value

    def invalidate(self) -> None:
        """Forget the version reading (after a write made by this process)."""
        self._version = (0.0, "")

    def get(self, key: Hashable, build: Callable[[], Rendered]) -> Rendered:
        """The document for ``key``, rendered by ``build`` on a miss (once, whatever the number
        of threads asking at the same time)."""
        full_key = (self.version(), key)
        while True:
            with self._lock:
                hit = self._items.get(full_key)
                if hit is not None:
                    self._items.move_to_end(full_key)
                pending = self._building.get(full_key)
                if hit is None and pending is None:
                    self._building[full_key] = threading.Event()
            if hit is not None:
                self.on_lookup(True)  # outside the lock: /metrics' counter has its own
                return hit.rendered
            if pending is None:
                self.on_lookup(False)
                break
            pending.wait()  # rendered meanwhile (or it failed, and this thread tries itself)
        try:
            rendered = build()
        finally:
            with self._lock:
                self._building.pop(full_key).set()
        if rendered.last_modified and rendered.last_modified.timestamp() > time.time():
            # a burst of writes ran the feed's stored time ahead of the clock; this render shows
            # the clock instead (``FeedSpec.updated``), so keeping it would serve that date after
            # the clock passes and differ from any later render of the same data
            return rendered
        with self._lock:
            if full_key[0] == self._held_version:
                self._store(full_key, rendered)
        return rendered

    def _store(self, full_key: Hashable, rendered: Rendered) -> None:
        size = len(rendered.body) + len(rendered.gzipped) + self.ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        old = self._items.pop(full_key, None)
        if old is not None:
            self._drop(old)
        self._items[full_key] = _Entry(rendered, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(self._items.popitem(last=False)[1])

    def _drop(self, entry: _Entry) -> None:
        self._bytes -= entry.size
        for alias in entry.aliases:
            self._aliases.pop(alias, None)

    def reply(self, alias: Hashable) -> _Entry | None:
        """The fast path's lookup: the entry the app answered ``alias`` with, in this version."""
        full_key = self._aliases.get((self.version(), alias))
        entry = self._items.get(full_key) if full_key is not None else None
        return entry

    def remember(self, alias: Hashable, key: Hashable, rendered: Rendered, variant: tuple[str, bool, bool],
                 status: str, headers: list[tuple[str, str]], family: str | None = None) -> None:
        """Record what the app sent for ``alias`` (answered with ``rendered`` under ``key``).

        Not while ``rendered.last_modified`` is still ahead of the clock: ``Rendered.headers``
        then sends the current time, which a replay would repeat once it is stale."""
        if rendered.last_modified and rendered.last_modified.timestamp() > time.time():
            return
        with self._lock:
            full_key = (self._held_version, key)
            entry = self._items.get(full_key)
            if entry is None or entry.rendered is not rendered:
                return  # evicted, or the version moved on while the app answered
            alias_key = (self._held_version, alias)
            if self._aliases.get(alias_key) != full_key:
                self._aliases[alias_key] = full_key
                entry.aliases.append(alias_key)
            entry.replies[variant] = (status, list(headers))
            entry.family = family


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip (RFC 9110 §12.5.3: ``gzip;q=0`` and
    ``*;q=0`` without gzip mean no). Cached: readers send a handful of distinct values."""
    return parse_accept_header(accept_encoding).quality("gzip") > 0


FAST_PATH_MARK = "topicfeed.cached"  # environ key: (cache key, document, variant) of a public answer


def decide(doc: Rendered, environ: dict[str, Any]) -> tuple[bool, bool]:
    """(gzip, not modified) for one request: gzip when accepted and worth it, 304 when a
    validator matches (RFC 9110 section 13.1, through Werkzeug's ``is_resource_modified``).
    Shared by ``respond`` and ``server.fastpath``, so both obey the same rules (gzip only for
    a q above 0: ``accepts_gzip``)."""
    compress = len(doc.body) > 256 and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ
    not_modified = conditional and not is_resource_modified(
        environ, etag=doc.etag + ("-gz" if compress else ""), last_modified=doc.last_modified)
    return compress, not_modified


def respond(doc: Rendered, max_age: int | None = None, cache_key: Hashable | None = None) -> Response:
    """A conditional GET/HEAD response: 304 when a validator matches, gzip when accepted.

    ``cache_key`` marks a public document (never a private feed) for ``server.fastpath``, which
    then answers the same request without the app. Headers are built directly (not through
    Response properties): this is the hot path of every reader poll.
    """
    environ = request.environ
    compress, not_modified = decide(doc, environ)
    if cache_key is not None:
        environ[FAST_PATH_MARK] = (cache_key, doc, (environ.get("REQUEST_METHOD", "GET"), compress, not_modified))
    headers = doc.headers(compress, current_app.config["CACHE_MAX_AGE"] if max_age is None else max_age)
    if not_modified:
        return Response(status=304, headers=[h for h in headers if h[0] != "Content-Encoding"])
    return Response(doc.gzipped if compress else doc.body, headers=headers, content_type=doc.content_type)
