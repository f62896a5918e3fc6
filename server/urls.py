"""Absolute URLs for links inside documents (feeds, OPML, API)."""
from __future__ import annotations

from flask import current_app, request


def base_url() -> str:
    """``PUBLIC_BASE_URL`` when configured (behind a proxy), else the URL of this request."""
    return (current_app.config["PUBLIC_BASE_URL"] or request.host_url).rstrip("/")


def feed_urls(path: str) -> dict[str, str]:
    """rss/atom/json URLs of one feed path such as ``topics/ai``."""
    base = base_url()
    return {ext: f"{base}/feeds/{path}.{ext}" for ext in ("rss", "atom", "json")}
