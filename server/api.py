"""The signed JSON API (/api/v1/…): every article and collection object carries ``secured``.

Who may read: with ``API_ACCESS = "paired"`` (default) a valid client bearer token is
required; with ``"public"`` anyone may read. Responses to a paired client are signed with
that client's secret, others with the server's own master keys.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from feeds.query import FeedQuery, parse_query
from feeds.errors import QueryError
from feeds.store import ArticleRow
from feeds.urlnorm import normalize_url, url_hash

from . import get_store
from .api_objects import article_object, summary_object
from .clients import client_from_token, secret_for
from .private_feeds import private_feed_token
from .problems import problem
from .signing import sign_object
from .urls import base_url, feed_urls

bp = Blueprint("api", __name__, url_prefix="/api")
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


def keyring() -> list[str]:
    return current_app.extensions["topicfeed.keys"].keys()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


@bp.before_request
def authenticate() -> Response | None:
    """Decide who is asking and with which secret the answer is signed."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return None  # curator writes authenticate with the admin token (server.curator)
    keys = keyring()
    token = bearer_token()
    if token:
        client = client_from_token(get_store(), keys, token)
        if client is None:
            return problem(401, "Unauthorized", "the client token is unknown, tampered with or revoked; pair again")
        g.client, g.secret = client, secret_for(client, keys)
    elif current_app.config["API_ACCESS"] == "paired":
        return problem(401, "Unauthorized", "this API needs a paired client: send 'Authorization: Bearer <token>' "
                                            "(create one with `topicfeed clients add NAME`)")
    else:
        g.client, g.secret = None, keys
    return None


@bp.after_request
def no_store(resp: Response) -> Response:
    resp.headers.setdefault("Cache-Control", "private, no-store")  # answers are signed per client
    resp.vary.add("Authorization")
    return resp


def signed(obj: dict[str, Any]) -> Response:
    return jsonify(sign_object(obj, g.secret))


def _articles(rows: list[ArticleRow], full: bool) -> list[dict[str, Any]]:
    store = get_store()
    names = store.topic_names()
    if not full:
        return [sign_object(summary_object(r, names), g.secret) for r in rows]
    neighbours = store.articles_by_ids({i for r in rows for i in r.related})
    return [article_object(r, neighbours, names, g.secret) for r in rows]


@bp.errorhandler(QueryError)
def bad_query(exc: QueryError) -> Response:
    return problem(400, "Bad Request", str(exc), parameter=exc.param)


@bp.get("/v1/topics")
def topics() -> Response:
    value = [{"slug": t["slug"], "name": t["name"], "parent": t["data"].get("parent"), "count": t["count"],
              "images": [i for i in t["data"].get("images") or [] if isinstance(i, str)],
              "feeds": feed_urls(f"topics/{t['slug']}")} for t in get_store().topics()]
    return signed({"title": "Topics", "value": value, "opml": f"{base_url()}/feeds/index.opml"})


@bp.get("/v1/providers")
def providers() -> Response:
    value = [{"domain": p["domain"], "name": p["name"], "count": p["count"], "feeds": feed_urls(f"providers/{p['domain']}")}
             for p in get_store().providers() if p["count"]]
    return signed({"title": "Providers", "value": value})


@bp.get("/v1/articles/<article_id>")
def article(article_id: str) -> Response:
    row = get_store().article(article_id)
    if row is None:
        return problem(404, "Not Found", f"no published article '{article_id}'")
    return jsonify(_articles([row], full=True)[0])


def _page_args(default_size: int) -> tuple[int, int]:
    page = request.args.get("page", "1")
    size = request.args.get("per_page", str(default_size))
    if not page.isdigit() or int(page) < 1:
        raise QueryError("page", f"parameter 'page' must be a positive integer, got {page[:40]!r}")
    if not size.isdigit() or not 1 <= int(size) <= 100:
        raise QueryError("per_page", f"parameter 'per_page' must be between 1 and 100, got {size[:40]!r}")
    return int(page), int(size)


@bp.get("/v1/topics/<slug>/articles")
def topic_articles(slug: str) -> Response:
    store = get_store()
    topic = store.topic(slug)
    if topic is None:
        return problem(404, "Not Found", f"no topic '{slug}'")
    page, size = _page_args(current_app.config["API_PAGE_SIZE"])
    filters = parse_query({k: v for k, v in request.args.items() if k in ("min_heat", "min_quality", "type", "q")})
    query = FeedQuery(limit=size + 1, min_quality=filters.min_quality, min_heat=filters.min_heat, type=filters.type, q=filters.q)
    rows = store.recent("topic", slug, query, offset=(page - 1) * size)
    path = f"{base_url()}/api/v1/topics/{slug}/articles"
    extra = "".join(f"&{k}={v}" for k, v in sorted(request.args.items()) if k in ("per_page", "min_heat", "min_quality", "type", "q"))
    return signed({"title": topic["name"], "path": path, "page": page, "perPage": size,
                   "value": _articles(rows[:size], full=False),
                   "nextPage": f"{path}?page={page + 1}{extra}" if len(rows) > size else None})


@bp.get("/v1/lookup")
def lookup() -> Response:
    """Articles by hash prefix (what the extension sends) or by URL (for people and scripts)."""
    prefix, url = request.args.get("prefix"), request.args.get("url")
    if url:
        try:
            prefix = url_hash(normalize_url(url))
        except ValueError:
            return problem(400, "Bad Request", f"parameter 'url' must be an http(s) URL, got {url[:80]!r}", parameter="url")
    elif prefix is None:
        return problem(400, "Bad Request", "give 'prefix' (8 to 64 hex characters of the URL's SHA-256) or 'url'",
                       parameter="prefix")
    prefix = prefix.lower()
    if not _HEX.match(prefix):
        return problem(400, "Bad Request", "parameter 'prefix' must be 8 to 64 hex characters", parameter="prefix")
    rows = [row for row, _ in get_store().lookup(prefix)]
    obj: dict[str, Any] = {"value": _articles(rows, full=True)}
    if url:
        obj["url"] = url
    else:
        obj["prefix"] = prefix
    return signed(obj)


@bp.get("/v1/private-feed-url")
def private_feed_url() -> Response:
    """A private feed URL for the calling client (readers that cannot send headers use it)."""
    if g.client is None:
        return problem(403, "Forbidden", "private feed URLs belong to a paired client: send its bearer token")
    feed = request.args.get("feed", "")
    ext = request.args.get("ext", "atom")
    if ext not in ("rss", "atom", "json"):
        return problem(400, "Bad Request", f"parameter 'ext' must be rss, atom or json, got {ext[:20]!r}", parameter="ext")
    filters = {k: v for k, v in request.args.items() if k in ("limit", "min_quality", "min_heat", "type", "q")}
    try:
        token = private_feed_token(g.client.id, feed, filters, keyring())
    except ValueError as exc:
        return problem(400, "Bad Request", str(exc), parameter="feed")
    return signed({"feed": feed, "url": f"{base_url()}/feeds/private/{token}.{ext}"})
