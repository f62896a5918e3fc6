"""HTTP caching for rendered documents: an in-process LRU bounded by bytes, keyed by route and
parameters, invalidated per feed from the store's change log; strong ETags, Last-Modified,
304s (Werkzeug's conditional helpers) and gzip."""
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

from feeds.store import EVERYTHING, Store, provider_identity, topic_identity


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

    @functools.cached_property
    def quoted_etags(self) -> tuple[str, str]:
        """The ``ETag`` values sent for the plain body and the gzip copy (``[compressed]``)."""
        return quote_etag(self.etag), quote_etag(self.etag + "-gz")

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


ANY = "@any"              # a dependency on every change: what a document depends on unless told
ANY_TOPIC = "@any-topic"  # a dependency on any topic feed (the topic OPML is dated by the newest)
ANY_PROVIDER = "@any-provider"


def feed_deps(identity: str) -> tuple[str, ...]:
    """The dependencies of a document showing one feed (``FeedRef.identity``): it changes when
    that feed's entries do (``feeds.store.changes``), whatever its query filters."""
    return (identity,)


def _tags(scopes: set[str]) -> set[str]:
    """The dependency tags a set of change-log scopes invalidates."""
    tags = scopes | {ANY}
    if any(s.startswith(topic_identity("")) for s in scopes):
        tags.add(ANY_TOPIC)
    if any(s.startswith(provider_identity("")) for s in scopes):
        tags.add(ANY_PROVIDER)
    return tags


@dataclass
class _Entry:
    """A cached document, what it depends on, the exact replies the app sent for it (by method,
    gzip, 304) and the request keys the fast path knows it under."""

    rendered: Rendered
    size: int
    deps: tuple[str, ...]
    # (method, gzip, 304) -> (status, headers, /metrics labels: route family and status)
    replies: dict[tuple[str, bool, bool], tuple[str, list[tuple[str, str]], tuple[str, str]]] = field(
        default_factory=dict)
    aliases: list[Hashable] = field(default_factory=list)


class RenderCache:
    """Rendered documents of one process, bounded by bytes (bodies plus their gzip copies) with
    least-recently-used eviction. Shared by the process's threads: concurrent misses for one
    document render it once, the others wait for that rendering.

    Invalidation is targeted: every entry names what it depends on (``feed_deps`` for a feed,
    ``LISTS``/``ANY_TOPIC``/``ANY_PROVIDER`` for the lists, ``ANY`` by default). At most every
    ``version_ttl`` seconds the process reads the store's change log after the last row it
    applied (one query, ``Store.changes_since``; written by every committed write in any
    process) and drops the entries those writes touched; a missed row (the log was pruned) or
    ``EVERYTHING`` drops all. With ``targeted=False`` every write drops all (the old behaviour,
    kept for side-by-side benchmarks). A rendering that started before an invalidation of one
    of its dependencies is answered but not kept: it may show the old data.

    It also serves ``server.fastpath``: a request key (path, normalised query) maps to the
    document the app answered with, together with the status and headers it sent; the mapping
    goes with the entry, so a replay is never older than the entry.
    """

    ENTRY_OVERHEAD = 1024  # bytes counted per entry for its key, headers and bookkeeping

    def __init__(self, store: Store, max_bytes: int, version_ttl: float, targeted: bool = True) -> None:
        self.store, self.max_bytes, self.version_ttl, self.targeted = store, max_bytes, version_ttl, targeted
        self._items: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._aliases: dict[Hashable, _Entry] = {}  # fast-path request key -> its entry (no key hashing)
        self._by_dep: dict[str, set[Hashable]] = {}
        self._building: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()  # one thread reads the change log at a time
        self._checked = 0.0                 # monotonic time of the last reading
        self._forced = 0                    # counts ``invalidate`` calls
        self._seq: tuple[int, str] | None = None  # (seq, version) of the last change-log row applied
        self._epoch = 0                     # counts invalidations applied here
        self._dropped: dict[str, int] = {}  # dependency tag -> epoch of its last invalidation
        self._cleared = 0                   # epoch of the last drop of everything
        self.on_lookup: Callable[[bool], None] = lambda hit: None  # /metrics counts hits and misses
        self.hits = self.misses = self.dropped = 0  # this cache's own counts (tests and benches)
        self._bytes = 0

    @property
    def size(self) -> int:
        """Bytes currently counted against ``max_bytes``."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def refresh(self) -> None:
        """Apply the store's new changes, at most every ``version_ttl`` seconds."""
        if time.monotonic() - self._checked < self.version_ttl:
            return
        with self._poll_lock:
            now = time.monotonic()
            if now - self._checked < self.version_ttl:
                return  # another thread read it meanwhile
            forced = self._forced
            rows = self.store.changes_since(None if self._seq is None else self._seq[0])
            if forced == self._forced:  # else a write made here meanwhile: read again at once
                self._checked = now
            with self._lock:
                self._apply(rows)

    def _apply(self, rows: list[tuple[int, str, list[str]]]) -> None:
        last = self._seq
        if last == (0, "") and (not rows or rows[0][0] == 1):
            new = rows  # the log was empty at the last reading: every row is new
        elif last is not None and rows and rows[0][:2] == last:
            new = rows[1:]  # from the row applied last on
        else:  # the first reading, rows pruned past ours, or an older log (a restored backup)
            self._seq = (rows[-1][0], rows[-1][1]) if rows else (0, "")
            self._clear()
            return
        if not new:
            return
        rows = new
        self._seq = (rows[-1][0], rows[-1][1])
        scopes = {s for _, _, scope in rows for s in scope}
        if not self.targeted or EVERYTHING in scopes:
            self._clear()
            return
        self._epoch += 1
        for tag in _tags(scopes):
            self._dropped[tag] = self._epoch
            for key in self._by_dep.pop(tag, ()):
                entry = self._items.pop(key, None)
                if entry is not None:
                    self._drop(key, entry)

    def _clear(self) -> None:
        self._epoch += 1
        self._cleared = self._epoch
        self.dropped += len(self._items)
        self._items.clear()
        self._aliases.clear()
        self._by_dep.clear()
        self._dropped.clear()
        self._bytes = 0

    def invalidate(self) -> None:
        """Read the change log at the next request (after a write made by this process)."""
        self._forced += 1
        self._checked = 0.0

    def get(self, key: Hashable, build: Callable[[], Rendered], deps: tuple[str, ...] = (ANY,)) -> Rendered:
        """The document for ``key``, rendered by ``build`` on a miss (once, whatever the number
        of threads asking at the same time). ``deps``: the dependency tags that invalidate it."""
        self.refresh()
        while True:
            with self._lock:
                epoch = self._epoch
                hit = self._items.get(key)
                if hit is not None:
                    self._items.move_to_end(key)
                pending = self._building.get(key)
                if hit is None and pending is None:
                    self._building[key] = threading.Event()
            if hit is not None:
                self.hits += 1
                self.on_lookup(True)  # outside the lock: /metrics' counter has its own
                return hit.rendered
            if pending is None:
                self.misses += 1
                self.on_lookup(False)
                break
            pending.wait()  # rendered meanwhile (or it failed, and this thread tries itself)
        try:
            rendered = build()
        finally:
            with self._lock:
                self._building.pop(key).set()
        if rendered.last_modified and rendered.last_modified.timestamp() > time.time():
            # a burst of writes ran the feed's stored time ahead of the clock; this render shows
            # the clock instead (``FeedSpec.updated``), so keeping it would serve that date after
            # the clock passes and differ from any later render of the same data
            return rendered
        with self._lock:
            if self._cleared <= epoch and all(self._dropped.get(d, 0) <= epoch for d in deps):
                self._store(key, rendered, deps)
        return rendered

    def _store(self, key: Hashable, rendered: Rendered, deps: tuple[str, ...]) -> None:
        size = len(rendered.body) + len(rendered.gzipped) + self.ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._drop(key, old)
        self._items[key] = _Entry(rendered, size, deps)
        for dep in deps:
            self._by_dep.setdefault(dep, set()).add(key)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(*self._items.popitem(last=False))

    def _drop(self, key: Hashable, entry: _Entry) -> None:
        self._bytes -= entry.size
        self.dropped += 1
        for alias in entry.aliases:
            self._aliases.pop(alias, None)
        for dep in entry.deps:
            keys = self._by_dep.get(dep)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_dep[dep]

    def reply(self, alias: Hashable) -> _Entry | None:
        """The fast path's lookup: the entry the app answered ``alias`` with, if still valid."""
        self.refresh()
        return self._aliases.get(alias)  # an entry leaves it when dropped (``_drop``, ``_clear``)

    def remember(self, alias: Hashable, key: Hashable, rendered: Rendered, variant: tuple[str, bool, bool],
                 status: str, headers: list[tuple[str, str]], family: str | None = None) -> None:
        """Record what the app sent for ``alias`` (answered with ``rendered`` under ``key``).

        Not while ``rendered.last_modified`` is still ahead of the clock: ``Rendered.headers``
        then sends the current time, which a replay would repeat once it is stale."""
        if rendered.last_modified and rendered.last_modified.timestamp() > time.time():
            return
        with self._lock:
            entry = self._items.get(key)
            if entry is None or entry.rendered is not rendered:
                return  # evicted, or invalidated while the app answered
            old = self._aliases.get(alias)
            if old is not entry:
                if old is not None and alias in old.aliases:
                    old.aliases.remove(alias)
                self._aliases[alias] = entry
                entry.aliases.append(alias)
            entry.replies[variant] = (status, list(headers), (family or "unmatched", status[:3]))


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
