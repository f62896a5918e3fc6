"""Public feed routes: /feeds/all, /feeds/topics/<slug>, /feeds/providers/<domain>, OPML."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from feeds.catalog import FORMATS, feed_spec, opml
from feeds.errors import QueryError, UnknownFeed
from feeds.query import FeedQuery, parse_query
from feeds.render import CONTENT_TYPES, RENDERERS

from . import get_store
from .httpcache import Rendered, render_cache, respond
from .private_feeds import private_feed
from .problems import plain_error
from .urls import base_url

bp = Blueprint("feeds", __name__, url_prefix="/feeds")
FORMAT = f"<any({', '.join(FORMATS)}):ext>"


def serve_feed(scope: str, key: str | None, ext: str, query: FeedQuery) -> Response:
    """Render (or reuse) one feed document and answer conditionally."""
    store = get_store()
    base = base_url()

    def build() -> Rendered:
        spec = feed_spec(store, scope, key, query, base)
        return Rendered.of(RENDERERS[ext](spec), CONTENT_TYPES[ext], spec.updated)

    try:
        doc = render_cache().get(("feed", scope, key, ext, base, query.cache_key()), build)
    except UnknownFeed as exc:
        return plain_error(404, str(exc))
    return respond(doc)


def _query() -> FeedQuery:
    return parse_query(request.args)


@bp.errorhandler(QueryError)
def bad_query(exc: QueryError) -> Response:
    return plain_error(400, str(exc))


@bp.get(f"/all.{FORMAT}")
def all_articles(ext: str) -> Response:
    return serve_feed("all", None, ext, _query())


@bp.get(f"/topics/<slug>.{FORMAT}")
def topic(slug: str, ext: str) -> Response:
    return serve_feed("topic", slug, ext, _query())


@bp.get(f"/providers/<domain>.{FORMAT}")
def provider(domain: str, ext: str) -> Response:
    return serve_feed("provider", domain.lower(), ext, _query())


@bp.get(f"/private/<token>.{FORMAT}")
def private(token: str, ext: str) -> Response:
    """A feed URL for readers that cannot send headers; dies with its client or its key."""
    found = private_feed(token)
    if found is None:
        return plain_error(404, "this private feed URL is not valid (revoked, or signed with a retired key)")
    scope, key, query = found
    return serve_feed(scope, key, ext, query)


@bp.get("/index.opml")
def opml_index() -> Response:
    base = base_url()

    def build() -> Rendered:
        return Rendered.of(opml(get_store(), base, current_app.config["SITE_TITLE"]), CONTENT_TYPES["opml"], None)

    return respond(render_cache().get(("opml", base), build))
