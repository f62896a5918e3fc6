"""The everyday-cc static API's paths and shape, so its consumers can switch to this server.

/api/news/<topic>/index.json and /api/news/<topic>/page/<n>/index.json give
``{title, path, page, value[], nextPage}`` with items in the records' own field names;
every item and page is signed like the rest of the API.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, jsonify

from feeds.query import FeedQuery

from .context import get_store
from .links import everyday_page_path
from .signing import sign_object

bp = Blueprint("everyday", __name__, url_prefix="/news")
PAGE_SIZE = 20  # the everyday-cc sites' pagination.page_size
MAX_PAGE = 1_000_000
_HIDDEN = {"sourceSecured", "content"}


def page_count(articles: int) -> int:
    """How many pages a topic with ``articles`` public articles has (at least one)."""
    return max(1, -(-articles // PAGE_SIZE))


def _page(slug: str, page: int) -> Response:
    store = get_store()
    topic = store.topic(slug)
    if topic is None:
        abort(404, f"no topic '{slug[:200]}'")
    rows = store.recent("topic", slug, FeedQuery(limit=PAGE_SIZE + 1), offset=(page - 1) * PAGE_SIZE)
    if page > 1 and not rows:
        abort(404, f"topic '{slug[:200]}' has no page {page}")
    items: list[dict[str, Any]] = [
        sign_object({k: v for k, v in r.record.items() if k not in _HIDDEN}, g.secret) for r in rows[:PAGE_SIZE]
    ]
    body = {"title": topic.name, "path": everyday_page_path(slug, page), "page": page, "value": items,
            "nextPage": everyday_page_path(slug, page + 1) if len(rows) > PAGE_SIZE else None}
    return jsonify(sign_object(body, g.secret))


@bp.get("/<slug>/index.json")
def first_page(slug: str) -> Response:
    return _page(slug, 1)


@bp.get("/<slug>/page/<int:page>/index.json")
def page(slug: str, page: int) -> Response:
    if not 1 <= page <= MAX_PAGE:
        abort(404, f"pages run from 1 to {MAX_PAGE}")
    return _page(slug, page)
