"""``topicfeed export DIR``: every feed, the OPML list, the HTML index and the static-API files,
written for a static host or CDN. Documents are fetched from the app itself, so the bytes are
exactly what the server would send. (Lookups and private feeds need the live server.)"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from flask import Flask

from feeds.catalog import FORMATS

from . import get_store


def export_paths(app: Flask) -> Iterator[str]:
    store = get_store(app)
    yield "/"
    yield "/feeds/index.opml"
    for ext in FORMATS:
        yield f"/feeds/all.{ext}"
    topics = [t for t in store.topics() if t.count]
    for topic in topics:
        for ext in FORMATS:
            yield f"/feeds/topics/{topic.slug}.{ext}"
    for provider in store.providers():
        if provider.count:
            for ext in FORMATS:
                yield f"/feeds/providers/{provider.domain}.{ext}"
    yield "/api/v1/topics"
    yield "/api/v1/providers"
    for topic in topics:
        pages = (topic.count + 19) // 20
        yield f"/api/news/{topic.slug}/index.json"
        for page in range(2, pages + 1):
            yield f"/api/news/{topic.slug}/page/{page}/index.json"


def _target(out: Path, path: str) -> Path:
    if path == "/":
        return out / "index.html"
    if path.startswith("/api/v1/"):
        return out / (path.lstrip("/") + ".json")
    return out / path.lstrip("/")


def export_site(app: Flask, out: Path, base_url: str) -> int:
    """Write every document under ``out``; returns how many files were written."""
    app.config.update(PUBLIC_BASE_URL=base_url.rstrip("/"), API_ACCESS="public")
    client = app.test_client()
    count = 0
    for path in export_paths(app):
        resp = client.get(path)
        if resp.status_code != 200:
            raise RuntimeError(f"export of {path} failed: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
        target = _target(out, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(resp.data)
        os.replace(tmp, target)
        count += 1
    return count
