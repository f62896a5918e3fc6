"""Render ahead: after a curator write, the writer renders again, on a short background thread,
the public documents the write dropped from its render cache (the feeds the article is or was
in, and the lists when they changed), so that the next reader finds them rendered.

Only documents that had been asked for since their last change are rendered again (the cache
remembers the request keys of what it dropped: ``RenderCache.take_dropped``), so the work is
what the next readers would have caused anyway, done before they ask rather than while they
wait: the write's answer goes out first, and a reader's request that arrives during the
rendering waits for it instead of rendering again (concurrent misses render once). Views are
called without the request hooks (no access log, no /metrics request count: no request came
in); at most ``MAX_DOCUMENTS`` per write. Only with ``public_base_url`` set, as the fast path:
documents then do not depend on the request's ``Host``.
"""
from __future__ import annotations

import logging
import threading

from flask import Flask

from .context import render_cache

MAX_DOCUMENTS = 24
log = logging.getLogger(__name__)


def after_write(app: Flask) -> None:
    """Start rendering again what this process's last write dropped (call after the commit)."""
    if app.config["PUBLIC_BASE_URL"] and app.config["TARGETED_INVALIDATION"]:
        threading.Thread(target=_render_again, args=(app,), name="render-ahead", daemon=True).start()


def _render_again(app: Flask) -> None:
    cache = render_cache(app)
    cache.refresh()  # applies the write's change-log row now (the write made the reading due)
    base = app.config["PUBLIC_BASE_URL"]
    for path, query in cache.take_dropped()[-MAX_DOCUMENTS:]:
        try:
            with app.test_request_context(path, base_url=base, query_string=list(query)):
                app.dispatch_request()  # the view only: it renders into the cache through RenderCache.get
        except Exception as exc:  # e.g. a topic that is gone now (404): readers will get that answer
            log.debug("render ahead of %s skipped: %s", path, exc)
