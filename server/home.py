"""The home page (topics and providers with counts, feed links, autodiscovery) and /healthz."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template

from feeds.feedspec import FeedRef

from .context import get_store, render_cache
from .httpcache import Rendered, respond
from .links import links

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> Response:
    link_builder = links()

    def build() -> Rendered:
        store = get_store()
        topics = [(t, link_builder.feeds(FeedRef("topic", t.slug))) for t in store.topics() if t.count]
        providers = [(p, link_builder.feeds(FeedRef("provider", p.domain))) for p in store.providers() if p.count]
        html = render_template("index.html", title=current_app.config["SITE_TITLE"], topics=topics,
                               providers=providers, stats=store.stats(), all=link_builder.feeds(FeedRef("all")),
                               opml=link_builder.opml())
        return Rendered.of(html.encode("utf-8"), "text/html; charset=utf-8", None)

    key = ("index", link_builder.base)
    return respond(render_cache().get(key, build), cache_key=key)


@bp.get("/healthz")
def health() -> dict[str, Any]:
    """Liveness plus the store version, for load balancers and monitoring."""
    store = get_store()
    return {"status": "ok", "version": store.version(), **store.stats()}
