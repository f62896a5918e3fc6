"""The HTML index: topics and providers with counts and feed links, plus autodiscovery."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from . import get_store
from .httpcache import Rendered, render_cache, respond
from .urls import base_url

bp = Blueprint("index", __name__)


@bp.get("/")
def home() -> Response:
    base = base_url()

    def build() -> Rendered:
        store = get_store()
        html = render_template("index.html", title=current_app.config["SITE_TITLE"], base=base,
                               topics=[t for t in store.topics() if t.count], providers=store.providers(),
                               stats=store.stats())
        return Rendered.of(html.encode("utf-8"), "text/html; charset=utf-8", None)

    return respond(render_cache().get(("index", base), build))


@bp.get("/healthz")
def health() -> dict:
    """Liveness plus the store version, for load balancers and monitoring."""
    store = get_store()
    return {"status": "ok", "version": store.version(), **store.stats()}
