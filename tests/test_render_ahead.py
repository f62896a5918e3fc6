"""Render ahead (server/renderahead.py): after a curator write the writer renders again the
public documents the write dropped, before any reader asks, with the bytes a fresh process
renders; documents nobody asked for are not rendered."""
from __future__ import annotations

import shutil

from feeds.importer import sync
from server import create_app, get_store
from server.cli import main as cli
from server.context import render_cache

from .test_golden import CONTENT
from .websub_subscriber import wait_for

BASE = "https://feeds.example.net"


def test_a_write_renders_again_the_feeds_readers_had_asked_for(tmp_path):
    content = tmp_path / "site"
    shutil.copytree(CONTENT, content)
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'content_dirs = ["{content}"]\npublic_base_url = "{BASE}"\n'
                                          'api_access = "public"\n')
    app = create_app(None, instance)
    sync(get_store(app), [content])
    token = app.test_cli_runner().invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    client, cache = app.test_client(), render_cache(app)
    asked = ["/feeds/topics/robots.atom", "/feeds/all.json"]
    for path in asked:  # readers asked for these (the second time through the fast path)
        assert client.get(path).status_code == 200 and client.get(path).status_code == 200
    before = cache.misses
    answer = client.post("/api/v1/articles", headers={"Authorization": f"Bearer {token}"},
                         json={"title": "Rendered ahead", "publishedDateTime": "2031-01-02T03:04:05Z",
                               "topics": ["Robots"], "webUrl": "https://example.org/rendered-ahead.html"})
    assert answer.status_code == 201, answer.get_data()
    wait_for(lambda: cache.misses - before == len(asked), timeout=30, what="both feeds rendered again")
    fresh = create_app(None, instance).test_client()  # an empty cache, as a new process
    for path in asked:
        served = client.get(path)
        assert b"Rendered ahead" in served.data and served.data == fresh.get(path).data, path
    assert cache.misses - before == len(asked)  # the readers' requests were hits
    # a feed nobody had asked for was not rendered ahead: its first request is a miss
    assert client.get("/feeds/topics/robots.rss").status_code == 200
    assert cache.misses - before == len(asked) + 1
