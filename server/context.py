"""What a view needs from the app, in one place (as flaskr's ``db.py``): the store, the master
keys and the render cache. ``init_app`` attaches them; views call the getters."""
from __future__ import annotations

from flask import Flask, current_app

from feeds.entrycache import EntryCache
from feeds.store import Store

from .httpcache import RenderCache
from .instance import KeyRing

_STORE, _KEYS, _CACHE, _ENTRIES = "topicfeed.store", "topicfeed.keys", "topicfeed.cache", "topicfeed.entries"


def init_app(app: Flask, store: Store, keyring: KeyRing) -> None:
    """Attach the store, the key ring, a render cache and an entry cache sized by the app's settings."""
    app.extensions[_STORE] = store
    app.extensions[_KEYS] = keyring
    app.extensions[_CACHE] = RenderCache(store, app.config["RENDER_CACHE_MB"] * 1024 * 1024, app.config["VERSION_TTL"],
                                           targeted=app.config["TARGETED_INVALIDATION"])
    entry_bytes = int(app.config["ENTRY_CACHE_MB"] * 1024 * 1024)
    app.extensions[_ENTRIES] = EntryCache(entry_bytes) if entry_bytes else None


def get_store(app: Flask | None = None) -> Store:
    """The app's store (``current_app`` when called inside a request or app context)."""
    return (app or current_app).extensions[_STORE]


def master_keys(app: Flask | None = None) -> list[str]:
    """The instance's master keys, oldest first (re-read when ``keys.json`` changes)."""
    return (app or current_app).extensions[_KEYS].keys()


def render_cache(app: Flask | None = None) -> RenderCache:
    """The process-wide cache of rendered documents."""
    return (app or current_app).extensions[_CACHE]


def entry_cache(app: Flask | None = None) -> EntryCache | None:
    """The process-wide cache of rendered feed entries (None when ``entry_cache_mb`` is 0)."""
    return (app or current_app).extensions[_ENTRIES]
