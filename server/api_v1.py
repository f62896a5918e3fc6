"""The signed JSON API's reads (/api/v1/…): every article and collection object carries ``secured``.

Who may read is decided once in ``server.auth``: with ``API_ACCESS = "paired"`` (default) a
valid client bearer token is required; with ``"public"`` anyone may read. Answers to a paired
client are signed with that client's secret, others with the server's own master keys.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from werkzeug.http import quote_etag

from feeds.errors import QueryError
from feeds.feedspec import FeedRef
from feeds.query import FEED_PARAMS, FILTER_PARAMS, FeedQuery, parse_query
from feeds.render import FORMATS
from feeds.urlnorm import normalize_url, url_hash

from .api_objects import article_objects
from .context import get_store, master_keys
from .links import links
from .private_feeds import private_feed_token
from .signing import sign_object

bp = Blueprint("v1", __name__, url_prefix="/v1")
_HEX = re.compile(r"^[0-9a-f]{8,64}$")
MAX_PAGE = 1_000_000  # far past any collection; keeps OFFSET within what both databases accept


def signed(obj: dict[str, Any]) -> Response:
    return jsonify(sign_object(obj, g.secret))


@bp.get("/topics")
def topics() -> Response:
    link_builder = links()
    value = [{"slug": t.slug, "name": t.name, "parent": t.data.get("parent"), "count": t.count,
              "images": [i for i in t.data.get("images") or [] if isinstance(i, str)],
              "feeds": link_builder.feeds(FeedRef("topic", t.slug))} for t in get_store().topics()]
    return signed({"title": "Topics", "value": value, "opml": link_builder.opml()})


@bp.get("/providers")
def providers() -> Response:
    link_builder = links()
    value = [{"domain": p.domain, "name": p.name, "count": p.count,
              "feeds": link_builder.feeds(FeedRef("provider", p.domain))}
             for p in get_store().providers() if p.count]
    return signed({"title": "Providers", "value": value})


@bp.get("/articles/<article_id>")
def article(article_id: str) -> Response:
    row = get_store().article(article_id)
    if row is None:
        abort(404, f"no published article '{article_id[:200]}'")
    resp = jsonify(article_objects(get_store(), [row], links(), g.secret, full=True)[0])
    # the version tag curator writes take in If-Match: the SHA-256 of the record file
    resp.headers["ETag"] = quote_etag(get_store().article_version(article_id) or "")
    return resp


def _bounded_int(name: str, default: int, high: int) -> int:
    raw = request.args.get(name, str(default))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not 1 <= int(raw) <= high:
        raise QueryError(name, f"parameter '{name}' must be an integer from 1 to {high}, got {raw[:40]!r}")
    return int(raw)


@bp.get("/topics/<slug>/articles")
def topic_articles(slug: str) -> Response:
    store = get_store()
    topic = store.topic(slug)
    if topic is None:
        abort(404, f"no topic '{slug[:200]}'")
    page = _bounded_int("page", 1, MAX_PAGE)
    size = _bounded_int("per_page", current_app.config["API_PAGE_SIZE"], 100)
    filters = parse_query({k: v for k, v in request.args.items() if k in FILTER_PARAMS})
    query = FeedQuery(limit=size + 1, min_quality=filters.min_quality, min_heat=filters.min_heat,
                      type=filters.type, q=filters.q)
    rows = store.recent("topic", slug, query, offset=(page - 1) * size)
    link_builder = links()
    kept = {k: v for k, v in request.args.items() if k == "per_page" or k in FILTER_PARAMS}
    return signed({"title": topic.name, "path": link_builder.api("api.v1.topic_articles", slug=slug),
                   "page": page, "perPage": size, "value": article_objects(store, rows[:size], link_builder, g.secret, full=False),
                   "nextPage": link_builder.api("api.v1.topic_articles", slug=slug, page=page + 1, **kept)
                   if len(rows) > size else None})


@bp.get("/lookup")
def lookup() -> Response:
    """Articles by hash prefix (what the extension sends) or by URL (for people and scripts)."""
    prefix, url = request.args.get("prefix"), request.args.get("url")
    if url:
        try:
            prefix = url_hash(normalize_url(url))
        except ValueError:
            raise QueryError("url", f"parameter 'url' must be an http(s) URL, got {url[:80]!r}") from None
    elif prefix is None:
        raise QueryError("prefix", "give 'prefix' (8 to 64 hex characters of the URL's SHA-256) or 'url'")
    prefix = prefix.lower()
    if not _HEX.match(prefix):
        raise QueryError("prefix", "parameter 'prefix' must be 8 to 64 hex characters")
    rows = [row for row, _ in get_store().lookup(prefix)]
    obj: dict[str, Any] = {"value": article_objects(get_store(), rows, links(), g.secret, full=True)}
    if url:
        obj["url"] = url
    else:
        obj["prefix"] = prefix
    return signed(obj)


@bp.get("/private-feed-url")
def private_feed_url() -> Response:
    """A private feed URL for the calling client (readers that cannot send headers use it)."""
    if g.client is None:
        abort(403, "private feed URLs belong to a paired client: send its bearer token")
    feed = request.args.get("feed", "")
    ext = request.args.get("ext", "atom")
    if ext not in FORMATS:
        raise QueryError("ext", f"parameter 'ext' must be one of {', '.join(FORMATS)}, got {ext[:20]!r}")
    filters = {k: v for k, v in request.args.items() if k in FEED_PARAMS}
    token = private_feed_token(get_store(), g.client.id, feed, filters, master_keys())
    return signed({"feed": feed, "url": links().private_feed(token, ext)})
