"""HTTP behaviour of feed routes: validators, 304s, HEAD, gzip, clear 400/404 bodies."""
from __future__ import annotations

import gzip

import pytest

from feeds.importer import sync
from server import get_store

from .test_golden import CONTENT


@pytest.fixture
def golden_client(app):
    sync(get_store(app), [CONTENT])
    return app.test_client()


@pytest.mark.parametrize("path,ctype", [
    ("/feeds/all.rss", "application/rss+xml"), ("/feeds/all.atom", "application/atom+xml"),
    ("/feeds/all.json", "application/feed+json"), ("/feeds/index.opml", "text/x-opml"), ("/", "text/html"),
])
def test_content_types_and_validators(golden_client, path, ctype):
    resp = golden_client.get(path)
    assert resp.status_code == 200
    assert resp.content_type.startswith(ctype) and "charset=utf-8" in resp.content_type
    assert resp.headers["ETag"].startswith('"') and not resp.headers["ETag"].startswith('W/')
    assert "max-age=" in resp.headers["Cache-Control"]
    assert "Accept-Encoding" in resp.headers["Vary"]


def test_304_on_both_validators(golden_client):
    first = golden_client.get("/feeds/topics/robots.atom")
    assert first.headers["Last-Modified"] == "Sat, 02 Mar 2024 08:00:00 GMT"
    by_etag = golden_client.get("/feeds/topics/robots.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert by_etag.status_code == 304 and by_etag.data == b""
    by_date = golden_client.get("/feeds/topics/robots.atom", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert by_date.status_code == 304
    stale = golden_client.get("/feeds/topics/robots.atom", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.data == first.data


def test_head_has_headers_and_no_body(golden_client):
    get = golden_client.get("/feeds/all.rss")
    head = golden_client.head("/feeds/all.rss")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert int(head.headers["Content-Length"]) == len(get.data)


def test_gzip_when_asked(golden_client):
    plain = golden_client.get("/feeds/all.atom")
    zipped = golden_client.get("/feeds/all.atom", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    again = golden_client.get("/feeds/all.atom", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304


def test_etag_changes_when_content_changes(app, tmp_path):
    import shutil
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    sync(get_store(app), [content])
    client = app.test_client()
    etag = client.get("/feeds/topics/robots.atom").headers["ETag"]
    assert client.get("/feeds/topics/robots.atom").headers["ETag"] == etag  # stable
    path = content / "_news" / "2024-02-20-warehouse-robots-get-a-union.md"
    path.write_text(path.read_text().replace("get a union", "get a pension"))
    sync(get_store(app), [content])
    resp = client.get("/feeds/topics/robots.atom", headers={"If-None-Match": etag})
    assert resp.status_code == 200 and b"get a pension" in resp.data


@pytest.mark.parametrize("query,message", [
    ("limit=0", "parameter 'limit' must be between 1 and 200, got 0"),
    ("limit=201", "parameter 'limit' must be between 1 and 200, got 201"),
    ("limit=ten", "parameter 'limit' must be an integer, got 'ten'"),
    ("min_quality=high", "parameter 'min_quality' must be an integer, got 'high'"),
    ("min_heat=1.5", "parameter 'min_heat' must be an integer, got '1.5'"),
    ("type=<script>", "parameter 'type' must be a word"),
    ("q=" + "x" * 201, "parameter 'q' must be at most 200 characters"),
])
def test_400_names_the_parameter(golden_client, query, message):
    resp = golden_client.get(f"/feeds/all.atom?{query}")
    assert resp.status_code == 400
    assert resp.content_type.startswith("text/plain")
    assert message in resp.data.decode()


def test_404_names_close_matches(golden_client):
    resp = golden_client.get("/feeds/topics/robot.atom")
    assert resp.status_code == 404 and "no topic 'robot'; did you mean robots?" in resp.data.decode()
    resp = golden_client.get("/feeds/providers/exampel.org.rss")
    assert resp.status_code == 404 and "did you mean example.org?" in resp.data.decode()
    assert golden_client.get("/feeds/topics/robots.xml").status_code == 404


def test_html_escapes_names(golden_client):
    html = golden_client.get("/").data.decode()
    assert "Example &lt;News&gt; &amp; Co" in html and "<News>" not in html


def test_feed_updated_is_never_in_the_future(app, tmp_path):
    import shutil
    import feedparser
    from datetime import datetime, timezone
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    (content / "_news" / "2099-01-01-from-the-future.md").write_text(
        "---\ntitle: Dated ahead\nwebUrl: https://example.org/future\npublishedDateTime: 2099-01-01T00:00:00Z\n"
        "topics: [Robots]\n---\n")
    sync(get_store(app), [content])
    resp = app.test_client().get("/feeds/topics/robots.atom")
    feed = feedparser.parse(resp.data)
    assert feed.entries[0].title == "Dated ahead"
    updated = datetime(*feed.feed.updated_parsed[:6], tzinfo=timezone.utc)
    assert updated <= datetime.now(timezone.utc)
    assert resp.last_modified <= datetime.now(timezone.utc)
