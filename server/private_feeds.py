"""Private feed URLs: ``/feeds/private/<token>.<ext>``, the token a signed {client, feed, filters}.

Everything a token names is checked when it is minted (the feed exists, the filters parse), so a
URL handed out never fails on every poll later."""
from __future__ import annotations

from collections.abc import Mapping

from itsdangerous import BadSignature

from feeds.errors import QueryError
from feeds.feedspec import FeedRef
from feeds.query import FEED_PARAMS, FeedQuery, parse_query
from feeds.store import Store

from .clients import get_client, secret_for
from .context import get_store, master_keys
from .signing import PRIVATE_FEED, sign, unsign


def private_feed_token(store: Store, client_id: str, feed: str, params: Mapping[str, str], keys: list[str]) -> str:
    """Token for ``/feeds/private/<token>.<ext>``. Raises ``QueryError`` (parameter ``feed`` or the
    filter's name) for an unknown feed, a malformed feed path or a bad filter value."""
    unknown = sorted(set(params) - set(FEED_PARAMS))
    if unknown:
        raise QueryError(unknown[0], f"unknown feed parameter '{unknown[0][:40]}' (use {', '.join(FEED_PARAMS)})")
    parse_query(params)
    try:
        ref = FeedRef.parse(feed)
    except ValueError as exc:
        raise QueryError("feed", str(exc)) from None
    exists = (ref.scope == "all" or ref.scope == "topic" and store.topic(ref.key or "") is not None
              or ref.scope == "provider" and store.provider(ref.key or "") is not None)
    if not exists:
        raise QueryError("feed", f"no feed {ref.identity!r}: see /api/v1/topics and /api/v1/providers")
    return sign({"client": client_id, "feed": ref.identity, "filters": dict(params)}, PRIVATE_FEED, keys)


def private_feed(token: str) -> tuple[FeedRef, FeedQuery] | None:
    """The feed and query of a valid token whose client is still active, else None."""
    keys = master_keys()
    try:
        value = unsign(token, PRIVATE_FEED, keys)
        client = get_client(get_store(), value["client"])
        ref = FeedRef.parse(value["feed"])
        query = parse_query(value.get("filters") or {})
    except (BadSignature, KeyError, TypeError, ValueError, QueryError):
        return None
    if client is None or client.revoked or secret_for(client, keys) is None:
        return None
    return ref, query
