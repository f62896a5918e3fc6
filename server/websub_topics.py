"""WebSub topics: which URLs are this server's public feeds, and their current documents.

A topic is any public feed URL under ``PUBLIC_BASE_URL`` — any format, any filters — parsed back
through the app's own routes (so a topic is exactly a URL the server answers) and named by its
canonical form (the feed's ``rel="self"`` URL). Private feed URLs are not topics.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from flask import Flask, current_app
from flask.ctx import RequestContext
from werkzeug.exceptions import HTTPException

from feeds.errors import QueryError
from feeds.feedspec import FeedRef
from feeds.query import FEED_PARAMS, FeedQuery, parse_query
from feeds.store import Store

from .feeds_routes import cached_feed
from .httpcache import Rendered
from .links import Links, hub_url

MAX_TOPIC_LENGTH = 2048
_SCOPES = {"feeds.all_articles": "all", "feeds.topic": "topic", "feeds.provider": "provider"}


@dataclass(frozen=True)
class TopicFeed:
    url: str           # canonical: the feed's own rel="self" URL
    ref: FeedRef
    ext: str
    query: FeedQuery


def _refuse(message: str) -> QueryError:
    return QueryError("hub.topic", f"hub.topic {message}")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _path_under(url: str, base: str) -> str | None:
    """The path of ``url`` below ``base`` (starting with ``/``), or None when ``url`` is not under
    it. Scheme and host compare case-insensitively, a trailing dot on the host and an explicit
    default port are the same origin (RFC 3986 §6.2.2–6.2.3): readers reach the feed by them."""
    try:
        u, b = urlsplit(url), urlsplit(base)
        ports = (u.port or _DEFAULT_PORTS.get(u.scheme.lower()), b.port or _DEFAULT_PORTS.get(b.scheme.lower()))
    except ValueError:
        return None
    if (u.scheme.lower() != b.scheme.lower() or (u.hostname or "").rstrip(".") != (b.hostname or "").rstrip(".")
            or ports[0] != ports[1] or u.username or u.password or not u.path.startswith(b.path + "/")):
        return None
    return u.path[len(b.path):]


def parse_topic(url: str) -> TopicFeed:
    """The public feed ``url`` names (in an app and request context); raises ``QueryError``
    (parameter ``hub.topic``) for anything else: another site, a private feed, a non-feed page,
    an unknown parameter or a bad filter value. Does not check that the feed exists."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    if not url:
        raise _refuse("is missing: the feed URL to subscribe to")
    if len(url) > MAX_TOPIC_LENGTH:
        raise _refuse(f"must be a feed URL of at most {MAX_TOPIC_LENGTH} characters")
    path = _path_under(url, base) if base else None
    if path is None:
        raise _refuse(f"must be one of this server's public feed URLs (under {base or 'its public_base_url'}/), "
                      f"got {url[:80]!r}")
    parts = urlsplit(url)
    try:
        # the router takes a decoded path, as a reader's request has (WSGI PATH_INFO)
        endpoint, args = current_app.url_map.bind("topic").match(unquote(path), method="GET")
    except HTTPException:
        raise _refuse(f"is not a feed URL of this server: {url[:80]!r}") from None
    scope = _SCOPES.get(str(endpoint))
    if scope is None:
        raise _refuse(f"must be a public feed URL (all, topics/<slug> or providers/<domain>), got {url[:80]!r}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - set(FEED_PARAMS))
    if unknown:
        raise _refuse(f"has unknown parameter '{unknown[0][:40]}' (feeds take {', '.join(FEED_PARAMS)})")
    if len(names) != len(set(names)):
        raise _refuse("repeats a parameter")
    try:
        query = parse_query(dict(pairs))
    except QueryError as exc:
        raise _refuse(f"has a bad filter: {exc}") from None
    key = args.get("slug") or (str(args["domain"]).lower() if "domain" in args else None)
    ref = FeedRef(scope, key)  # type: ignore[arg-type]
    ext = str(args["ext"])
    return TopicFeed(Links(base).feed(ref, ext, query.as_params()), ref, ext, query)


def feed_exists(store: Store, ref: FeedRef) -> bool:
    return (ref.scope == "all" or ref.scope == "topic" and store.topic(ref.key or "") is not None
            or ref.scope == "provider" and store.provider(ref.key or "") is not None)


def render_topic(topic: TopicFeed) -> Rendered:
    """The topic's document now, exactly as a reader would get it (raises ``UnknownFeed``)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return cached_feed(topic.ref, topic.ext, topic.query, Links(base), hub_url())


def topic_context(app: Flask) -> RequestContext:
    """A request context at ``PUBLIC_BASE_URL`` for work outside requests (the hub's worker):
    routes and links resolve as they do for readers."""
    return app.test_request_context("/", base_url=app.config["PUBLIC_BASE_URL"] or "http://localhost")
