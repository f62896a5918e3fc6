"""Rendered feed entries kept for the next feed that shows them, bounded by bytes.

Why: a cache-miss feed document (a feed not rendered since its last change, another format of
it, or another feed sharing its articles: ``all``, the topics, the provider) mostly shows entries
some earlier render already built. Keys are content-addressed — ``(article id, entry version,
format, category scheme)``, the version being the digest of everything the entry shows plus the
time it last changed (``feeds.store.articles.entry_version``) — so a write, an import or a
taxonomy edit never needs to reach this cache: a changed entry has a new key, and the old one
ages out under the byte bound. Shared by every thread of a process.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class EntryCache:
    """A least-recently-used map of rendered entries, holding at most ``max_bytes`` (each value
    counted at the size its ``put`` gave, plus ``ENTRY_OVERHEAD``); ``max_bytes=0`` keeps nothing."""

    ENTRY_OVERHEAD = 512  # bytes counted per entry for its key and bookkeeping

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self.hits = self.misses = 0  # counts for benches and tests

    @property
    def size(self) -> int:
        """Bytes currently counted against ``max_bytes``."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        """The value kept for ``key`` (now the most recently used), else None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep ``value`` (about ``size`` bytes in memory) under ``key``, evicting the least
        recently used entries past the bound; a value larger than the bound is not kept."""
        size += self.ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        """Drop everything (benches measuring an empty cache)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
