"""``topicfeed export DIR``: every feed, the OPML list, the HTML index and the static-API files,
written for a static host or CDN. Documents are fetched from the app itself, so the bytes are
exactly what the server would send. (Lookups and private feeds need the live server.)"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

from feeds.atomic import write_atomic
from feeds.feedspec import FeedRef

from .context import get_store
from .everyday_api import page_count
from .links import Links


def export_urls(app: Flask, links: Links) -> Iterator[str]:
    """Every document the export writes, as the absolute URLs the server answers at."""
    store = get_store(app)
    yield links.home()
    yield links.opml()
    yield links.provider_opml()
    yield links.icon()  # every feed names the site's icon and logo: the export carries them
    yield links.logo()
    topics = [t for t in store.topics() if t.count]
    refs = [FeedRef("all")] + [FeedRef("topic", t.slug) for t in topics]
    refs += [FeedRef("provider", p.domain) for p in store.providers() if p.count]
    for ref in refs:
        yield from links.feeds(ref).values()
    yield links.api("api.v1.topics")
    yield links.api("api.v1.providers")
    for topic in topics:
        for page in range(1, page_count(topic.count) + 1):
            yield links.everyday_page(topic.slug, page)


def _target(out: Path, path: str) -> Path:
    if path == "/":
        return out / "index.html"
    if path.startswith("/api/v1/"):
        return out / (path.lstrip("/") + ".json")
    return out / path.lstrip("/")


def export_site(app: Flask, out: Path, base_url: str) -> int:
    """Write every document under ``out``; returns how many files were written.
    Raises ``RuntimeError`` naming the first document the app does not answer with 200."""
    base = base_url.rstrip("/")
    app.config.update(PUBLIC_BASE_URL=base, API_ACCESS="public")
    prefix = urlsplit(base).path
    client = app.test_client()
    with app.test_request_context("/"):
        urls = list(export_urls(app, Links(base)))
    count = 0
    for url in urls:
        path = urlsplit(url).path.removeprefix(prefix) or "/"
        resp = client.get(path)
        if resp.status_code != 200:
            raise RuntimeError(f"export of {path} failed: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
        target = _target(out, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, resp.data)
        count += 1
    return count
