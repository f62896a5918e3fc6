"""Private feed URLs: ``/feeds/private/<token>.<ext>``, the token a signed {client, feed, filters}."""
from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature

from feeds.errors import QueryError
from feeds.query import FeedQuery, parse_query

from . import get_store
from .clients import get_client, secret_for
from .signing import PRIVATE_FEED, sign, unsign


def parse_feed_path(path: str) -> tuple[str, str | None]:
    """``all``, ``topics/<slug>`` or ``providers/<domain>`` (an optional extension is ignored)."""
    path = path.strip("/").removeprefix("feeds/")
    for ext in (".rss", ".atom", ".json"):
        path = path.removesuffix(ext)
    if path == "all":
        return "all", None
    kind, _, key = path.partition("/")
    if kind in ("topics", "providers") and key and "/" not in key:
        return ("topic" if kind == "topics" else "provider"), key
    raise ValueError(f"not a feed path: {path!r} (use all, topics/<slug> or providers/<domain>)")


def canonical_feed_path(path: str) -> str:
    scope, key = parse_feed_path(path)
    return "all" if scope == "all" else f"{'topics' if scope == 'topic' else 'providers'}/{key}"


def private_feed_token(client_id: str, feed_path: str, params: dict[str, str], keys: list[str]) -> str:
    """Token for ``/feeds/private/<token>.<ext>``; bad paths or filters are refused now, not at poll time."""
    parse_query(params)
    return sign({"client": client_id, "feed": canonical_feed_path(feed_path), "filters": params}, PRIVATE_FEED, keys)


def private_feed(token: str) -> tuple[str, str | None, FeedQuery] | None:
    """(scope, key, query) of a valid token whose client is still active, else None."""
    keys = current_app.extensions["topicfeed.keys"].keys()
    try:
        value = unsign(token, PRIVATE_FEED, keys)
        client = get_client(get_store(), value["client"])
        scope, key = parse_feed_path(value["feed"])
        query = parse_query(value.get("filters") or {})
    except (BadSignature, KeyError, TypeError, ValueError, QueryError):
        return None
    if client is None or client.revoked or secret_for(client, keys) is None:
        return None
    return scope, key, query
