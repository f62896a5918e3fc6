"""The everyday-cc static API's paths and shape, so its consumers can switch to this server.

/api/news/<topic>/index.json and /api/news/<topic>/page/<n>/index.json give
``{title, path, page, value[], nextPage}`` with items in the records' own field names;
every item and page is signed like the rest of the API.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify

from feeds.query import FeedQuery

from . import api, get_store
from .problems import problem
from .signing import sign_object

bp = Blueprint("compat", __name__, url_prefix="/api/news")
bp.before_request(api.authenticate)
bp.after_request(api.no_store)
PAGE_SIZE = 20  # the everyday-cc sites' pagination.page_size
_HIDDEN = {"sourceSecured", "content"}


def _page_path(slug: str, page: int) -> str:
    return f"/api/news/{slug}/index.json" if page == 1 else f"/api/news/{slug}/page/{page}/index.json"


def _page(slug: str, page: int) -> Response:
    store = get_store()
    topic = store.topic(slug)
    if topic is None:
        return problem(404, "Not Found", f"no topic '{slug}'")
    rows = store.recent("topic", slug, FeedQuery(limit=PAGE_SIZE + 1), offset=(page - 1) * PAGE_SIZE)
    if page > 1 and not rows:
        return problem(404, "Not Found", f"topic '{slug}' has no page {page}")
    items: list[dict[str, Any]] = [
        sign_object({k: v for k, v in r.record.items() if k not in _HIDDEN}, g.secret) for r in rows[:PAGE_SIZE]
    ]
    body = {"title": topic.name, "path": _page_path(slug, page), "page": page, "value": items,
            "nextPage": _page_path(slug, page + 1) if len(rows) > PAGE_SIZE else None}
    return jsonify(sign_object(body, g.secret))


@bp.get("/<slug>/index.json")
def first_page(slug: str) -> Response:
    return _page(slug, 1)


@bp.get("/<slug>/page/<int:page>/index.json")
def page(slug: str, page: int) -> Response:
    if page < 1:
        return problem(404, "Not Found", "pages start at 1")
    return _page(slug, page)
