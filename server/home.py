"""The home page (topics and providers with counts, feed links, autodiscovery in ``<link>``
elements and HTTP ``Link`` headers), the favicon and /healthz."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, render_template, send_from_directory

from feeds.feedspec import FeedRef, feed_title
from feeds.render import CONTENT_TYPES
from feeds.store import LISTS

from .context import get_store, render_cache
from .httpcache import Rendered, respond
from .links import links

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> Response:
    """The index page; its ``Link`` headers (RFC 8288) name the main feeds for readers given
    the site's address that look at headers rather than parse HTML."""
    link_builder = links()

    def build() -> Rendered:
        store = get_store()
        topics = [(t, feed_title(FeedRef("topic", t.slug), t.name), link_builder.feeds(FeedRef("topic", t.slug)))
                  for t in store.topics() if t.count]
        providers = [(p, link_builder.feeds(FeedRef("provider", p.domain))) for p in store.providers() if p.count]
        html = render_template("index.html", title=current_app.config["SITE_TITLE"], topics=topics,
                               providers=providers, stats=store.stats(), all=link_builder.feeds(FeedRef("all")),
                               all_title=feed_title(FeedRef("all")), opml=link_builder.opml(),
                               provider_opml=link_builder.provider_opml(), icon=link_builder.icon())
        return Rendered.of(html.encode("utf-8"), "text/html; charset=utf-8", None)

    key = ("index", link_builder.base)
    # shows the feeds with articles and the public count: changes only when some feed's membership does
    resp = respond(render_cache().get(key, build, (LISTS,)), cache_key=key)  # the fast path replays the Link headers too
    site, title = current_app.config["SITE_TITLE"], feed_title(FeedRef("all"))
    for ext, url in link_builder.feeds(FeedRef("all")).items():
        kind = CONTENT_TYPES[ext].split(";")[0]
        resp.headers.add("Link", f'<{url}>; rel="alternate"; type="{kind}"; title="{_quoted(f"{site}: {title}")}"')
    return resp


def _quoted(text: str) -> str:
    """A quoted-string parameter value (RFC 9110 §5.6.4): backslash-escape ``"`` and ``\\``,
    drop what a header cannot carry."""
    text = "".join(c for c in text if c.isprintable() and ord(c) < 0x7F) or "feed"
    return text.replace("\\", "\\\\").replace('"', '\\"')


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The site's icon (the extension's feed symbol), also every feed's icon without its own."""
    assert current_app.static_folder is not None
    return send_from_directory(current_app.static_folder, "favicon.ico", max_age=86400,
                               mimetype="image/vnd.microsoft.icon")


@bp.get("/healthz")
def health() -> dict[str, Any]:
    """Liveness plus the store version and the last import (``last_import``: ``finished`` as an
    RFC 3339 UTC time, ``duration_s``, ``result`` ``ok``/``failed``; null before the first), for
    load balancers and monitoring. The import's summary is left out: for a failed import it is
    the error's text (paths, hosts, database messages), and this page is public behind the
    shipped proxy; ``topicfeed status`` shows it to the operator."""
    store = get_store()
    last = store.last_import()
    last_import = None if last is None else {
        "finished": datetime.fromtimestamp(last.finished_ts, timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(last.duration_s, 3), "result": last.result}
    return {"status": "ok", "version": store.version(), **store.stats(), "last_import": last_import,
            "websub": store.websub.health()}
