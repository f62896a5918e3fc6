"""Public feed routes: /feeds/all, /feeds/topics/<slug>, /feeds/providers/<domain>, the private
feed URLs and the OPML list. Unknown feeds and bad parameters raise; ``server.errors`` answers."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

from feeds.feedspec import FeedRef, feed_spec, opml, provider_opml
from feeds.query import FeedQuery, parse_query
from feeds.render import CONTENT_TYPES, FORMATS, RENDERERS
from feeds.store import LISTS

from .context import entry_cache, get_store, render_cache
from .httpcache import ANY_PROVIDER, ANY_TOPIC, Rendered, feed_deps, respond
from .links import Links, hub_url, links
from .private_feeds import private_feed

bp = Blueprint("feeds", __name__, url_prefix="/feeds")
FORMAT = f"<any({', '.join(FORMATS)}):ext>"


def render_feed(ref: FeedRef, ext: str, query: FeedQuery, link_builder: Links, hub: str | None) -> Rendered:
    """One feed document advertising ``hub`` (if any): what readers get and what WebSub distributes."""
    spec = feed_spec(get_store(), ref, query, link_builder, entry_cache(), ext)
    spec.hub_url = hub
    return Rendered.of(RENDERERS[ext](spec), CONTENT_TYPES[ext], spec.last_modified)


def _feed_key(ref: FeedRef, ext: str, query: FeedQuery, link_builder: Links, hub: str | None) -> tuple:
    return ("feed", ref, ext, link_builder.base, query.cache_key(), hub)


def cached_feed(ref: FeedRef, ext: str, query: FeedQuery, link_builder: Links, hub: str | None) -> Rendered:
    """``render_feed`` through the process's render cache (readers and the WebSub worker share it)."""
    return render_cache().get(_feed_key(ref, ext, query, link_builder, hub),
                              lambda: render_feed(ref, ext, query, link_builder, hub), feed_deps(ref.identity))


def serve_feed(ref: FeedRef, ext: str, query: FeedQuery, public: bool = True) -> Response:
    """Render (or reuse) one feed document and answer conditionally. A public feed names the
    WebSub hub and its own URL in ``Link`` headers too (WebSub §4), on 304s as well, and may be
    answered again by ``server.fastpath`` (private feed URLs never)."""
    link_builder = links()
    hub = hub_url() if public else None
    key = _feed_key(ref, ext, query, link_builder, hub)
    resp = respond(cached_feed(ref, ext, query, link_builder, hub), cache_key=key if public else None)
    if hub:
        resp.headers["Link"] = f'<{hub}>; rel="hub", <{link_builder.feed(ref, ext, query.as_params())}>; rel="self"'
    return resp


@bp.get(f"/all.{FORMAT}")
def all_articles(ext: str) -> Response:
    return serve_feed(FeedRef("all"), ext, parse_query(request.args))


@bp.get(f"/topics/<slug>.{FORMAT}")
def topic(slug: str, ext: str) -> Response:
    return serve_feed(FeedRef("topic", slug), ext, parse_query(request.args))


@bp.get(f"/providers/<domain>.{FORMAT}")
def provider(domain: str, ext: str) -> Response:
    return serve_feed(FeedRef("provider", domain.lower()), ext, parse_query(request.args))


@bp.get(f"/private/<token>.{FORMAT}")
def private(token: str, ext: str) -> Response:
    """A feed URL for readers that cannot send headers; dies with its client or its key."""
    found = private_feed(token)
    if found is None:
        abort(404, "this private feed URL is not valid (revoked, or signed with a retired key)")
    ref, query = found
    return serve_feed(ref, ext, query, public=False)  # not offered for WebSub: no hub advertised


@bp.get("/index.opml")
def opml_index() -> Response:
    link_builder = links()

    def build() -> Rendered:
        return Rendered.of(opml(get_store(), link_builder, current_app.config["SITE_TITLE"]), CONTENT_TYPES["opml"], None)

    key = ("opml", link_builder.base)  # lists topic feeds with articles, dated by the newest change
    return respond(render_cache().get(key, build, (LISTS, ANY_TOPIC)), cache_key=key)


@bp.get("/providers.opml")
def provider_opml_index() -> Response:
    """Every provider feed as OPML: disjoint feeds, for readers that keep one copy per entry id."""
    link_builder = links()

    def build() -> Rendered:
        return Rendered.of(provider_opml(get_store(), link_builder, current_app.config["SITE_TITLE"]),
                           CONTENT_TYPES["opml"], None)

    key = ("provider-opml", link_builder.base)
    return respond(render_cache().get(key, build, (LISTS, ANY_PROVIDER)), cache_key=key)
