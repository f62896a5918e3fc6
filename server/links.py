"""Every URL the server emits, in one place (as Datasette's ``url_builder``): Flask's routes
give the path and escape every value once; the configured public base URL (or, without one,
the request's own) gives the origin. Views, the CLI and the static export never format URLs."""
from __future__ import annotations

import re
from collections.abc import Mapping

from flask import current_app, request, url_for

from feeds.feedspec import FeedRef
from feeds.render import FORMATS

_PLAIN_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")
_FEED_ENDPOINTS = {"all": ("feeds.all_articles", None), "topic": ("feeds.topic", "slug"),
                   "provider": ("feeds.provider", "domain")}


def base_url() -> str:
    """``PUBLIC_BASE_URL`` when configured (behind a proxy), else the origin of this request.

    The common case (a plain ``Host`` header) is read straight from the WSGI environ: this runs
    on every feed poll, and Werkzeug's general ``host_url`` costs more than the rest of a cached hit.
    """
    configured = current_app.config["PUBLIC_BASE_URL"]
    if configured:
        return configured.rstrip("/")
    environ = request.environ
    host = environ.get("HTTP_HOST", "")
    if _PLAIN_HOST.match(host):
        return f"{environ['wsgi.url_scheme']}://{host.lower()}"
    return request.host_url.rstrip("/")


class Links:
    """Absolute URLs of one origin. Query values are passed as a mapping and encoded once
    (RFC 3986 percent-encoding by Werkzeug), so any filter value round-trips unchanged."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def _url(self, endpoint: str, values: Mapping[str, object]) -> str:
        # url_for adds the script root (a mount prefix) itself; the base is the origin only then.
        return self.base + url_for(endpoint, **values)

    def home(self) -> str:
        return self._url("home.home", {})

    def feed(self, ref: FeedRef, ext: str, params: Mapping[str, str] | None = None) -> str:
        """``/feeds/all.<ext>``, ``/feeds/topics/<slug>.<ext>`` or ``/feeds/providers/<domain>.<ext>``."""
        endpoint, key_name = _FEED_ENDPOINTS[ref.scope]
        values: dict[str, object] = dict(sorted((params or {}).items()))
        if key_name:
            values[key_name] = ref.key
        values["ext"] = ext
        return self._url(endpoint, values)

    def feeds(self, ref: FeedRef) -> dict[str, str]:
        """The feed in every format: ``{"rss": url, "atom": url, "json": url}``."""
        return {ext: self.feed(ref, ext) for ext in FORMATS}

    def opml(self) -> str:
        return self._url("feeds.opml_index", {})

    def provider_opml(self) -> str:
        """The OPML of provider feeds (disjoint: for readers keeping one copy per entry id)."""
        return self._url("feeds.provider_opml_index", {})

    def icon(self) -> str:
        """The site's favicon (``/favicon.ico``): every feed's icon unless it has its own."""
        return self._url("home.favicon", {})

    def logo(self) -> str:
        """The site's logo (a 256×256 PNG under ``/static``)."""
        return self._url("static", {"filename": "logo.png"})

    def private_feed(self, token: str, ext: str) -> str:
        return self._url("feeds.private", {"token": token, "ext": ext})

    def everyday_page(self, slug: str, page: int) -> str:
        """``/api/news/<slug>/index.json`` (page 1) or ``…/page/<n>/index.json``: the everyday-cc static API."""
        return self.base + everyday_page_path(slug, page)

    def websub(self) -> str:
        """The built-in WebSub hub endpoint."""
        return self._url("websub.hub", {})

    def api(self, endpoint: str, **values: object) -> str:
        """An API URL by endpoint name, e.g. ``api("api.v1.article", article_id=...)``."""
        return self._url(endpoint, values)


def everyday_page_path(slug: str, page: int) -> str:
    """Site-relative path of one everyday-cc page, as those sites name them (their ``path`` and
    ``nextPage`` fields are relative)."""
    if page == 1:
        return url_for("api.everyday.first_page", slug=slug)
    return url_for("api.everyday.page", slug=slug, page=page)


def links() -> Links:
    """Links for the current request (or the export's/CLI's test request context)."""
    return Links(base_url())


def hub_url() -> str | None:
    """The WebSub hub feeds advertise: the configured external hub, else the built-in one when
    ``PUBLIC_BASE_URL`` is set (deliveries are rendered outside requests, so links cannot come
    from a ``Host`` header), else none."""
    config = current_app.config
    if config["WEBSUB_HUB"]:
        return config["WEBSUB_HUB"]
    return Links(config["PUBLIC_BASE_URL"]).websub() if config["PUBLIC_BASE_URL"] else None
