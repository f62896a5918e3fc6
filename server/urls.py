"""Absolute URLs for links inside documents (feeds, OPML, API)."""
from __future__ import annotations

import re

from flask import current_app, request

_PLAIN_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")


def base_url() -> str:
    """``PUBLIC_BASE_URL`` when configured (behind a proxy), else the URL of this request.

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


def feed_urls(path: str) -> dict[str, str]:
    """rss/atom/json URLs of one feed path such as ``topics/ai``."""
    base = base_url()
    return {ext: f"{base}/feeds/{path}.{ext}" for ext in ("rss", "atom", "json")}
