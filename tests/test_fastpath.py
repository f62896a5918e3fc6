"""The fast path for cached public documents (server/fastpath.py) and the render cache it reads:
byte- and header-identical answers to the app's for every route family and request variant,
private feed URLs and unknown hosts kept on the slow path, a byte-bounded cache, one rendering
for concurrent misses."""
from __future__ import annotations

import threading

import pytest

from feeds.importer import sync
from server import create_app, fastpath, get_store
from server.clients import add_client, revoke_client
from server.context import master_keys, render_cache
from server.httpcache import Rendered, RenderCache
from server.private_feeds import private_feed_token

from .test_golden import CONTENT

BASE = "https://feeds.example.net"
PATHS = ["/", "/feeds/index.opml", "/feeds/all.atom", "/feeds/all.rss", "/feeds/all.json",
         "/feeds/topics/robots.atom", "/feeds/topics/robots.rss", "/feeds/topics/robots.json",
         "/feeds/providers/example.org.rss", "/feeds/all.atom?type=article&min_quality=10",
         "/feeds/all.atom?min_quality=10&type=article"]


@pytest.fixture
def fast_app(tmp_path):
    app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0, "PUBLIC_BASE_URL": BASE}, tmp_path / "instance")
    sync(get_store(app), [CONTENT])
    return app


def answer(resp) -> tuple[int, list[tuple[str, str]], bytes]:
    return resp.status_code, list(resp.headers.items()), resp.get_data()


def variants(client, path):
    """Request headers for every variant: plain, gzip, 304 by ETag (both encodings), 304 by date,
    and the validator spellings the fast path leaves to Werkzeug (weak, listed, ``*``, the other
    encoding's ETag, ``If-Match`` next to a matching ``If-None-Match``, a stale ETag with a date)."""
    plain = client.get(path)
    gz = client.get(path, headers={"Accept-Encoding": "gzip"})
    etag, gz_etag = plain.headers["ETag"], gz.headers["ETag"]
    out = [{}, {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "gzip;q=0, identity"},
           {"If-None-Match": etag}, {"If-None-Match": gz_etag, "Accept-Encoding": "gzip"},
           {"If-None-Match": "W/" + etag}, {"If-None-Match": f'"other", {etag}'}, {"If-None-Match": "*"},
           {"If-None-Match": gz_etag}, {"If-None-Match": etag, "If-Match": '"other"'}]
    if "Last-Modified" in plain.headers:
        out.append({"If-Modified-Since": plain.headers["Last-Modified"]})
        out.append({"If-None-Match": '"stale"', "If-Modified-Since": plain.headers["Last-Modified"]})
    return out


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_fast_answers_equal_the_apps(fast_app, path, method):
    client = fast_app.test_client()
    fast = fastpath.of(fast_app)
    for headers in variants(client, path):
        slow = answer(client.open(path, method=method, headers=headers))  # the app answers and is recorded
        hits = fast.hits
        again = answer(client.open(path, method=method, headers=headers))
        assert fast.hits == hits + 1, (path, headers)  # answered without the app
        assert again == slow, (path, method, headers)
        assert slow[0] in (200, 304)
        names = {name for name, _ in again[1]}
        assert "X-Content-Type-Options" in names  # server/edge.py's headers are replayed too
        if path == "/":
            assert {"Link", "Content-Security-Policy"} <= names  # server/home.py's Link headers
        if "gzip;q=0" in headers.get("Accept-Encoding", ""):
            assert "Content-Encoding" not in names  # q=0 refuses gzip on both paths


def test_reordered_query_shares_the_document_not_the_bytes_of_another(fast_app):
    client = fast_app.test_client()
    a = client.get("/feeds/all.atom?type=article&min_quality=10")
    b = client.get("/feeds/all.atom?min_quality=10&type=article")
    assert a.get_data() == b.get_data()
    assert client.get("/feeds/all.atom?min_quality=99").get_data() != a.get_data()


def test_private_feed_urls_always_reach_the_app(fast_app):
    client = fast_app.test_client()
    store, keys = get_store(fast_app), master_keys(fast_app)
    reader = add_client(store, keys, "reader")
    token = private_feed_token(store, reader.id, "all", {}, keys)
    path = f"/feeds/private/{token}.atom"
    hits = fastpath.of(fast_app).hits
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 200
    assert fastpath.of(fast_app).hits == hits
    revoke_client(store, reader.id)
    assert client.get(path).status_code == 404  # at once


def test_unknown_host_goes_to_the_app_and_adds_no_entry(fast_app):
    client = fast_app.test_client()
    client.get("/feeds/all.atom")
    cache = render_cache(fast_app)
    entries, hits = len(cache._items), fastpath.of(fast_app).hits
    for n in range(40):
        resp = client.get("/feeds/all.atom", headers={"Host": f"forged{n}.example"})
        assert resp.status_code == 200
        assert BASE.encode() in resp.get_data()  # self links come from public_base_url
    assert len(cache._items) == entries
    assert fastpath.of(fast_app).hits == hits  # every forged host was answered by the app
    assert len(fastpath.of(fast_app).hosts) <= 16


def test_a_write_invalidates_the_fast_path(fast_app):
    client = fast_app.test_client()
    before = client.get("/feeds/all.atom")
    client.get("/feeds/all.atom")
    with get_store(fast_app).write() as tx:
        tx.set_meta("note", "changed")  # a new store version that changes no feed: still replayed
    hits = fastpath.of(fast_app).hits
    assert client.get("/feeds/all.atom").get_data() == before.get_data()
    assert fastpath.of(fast_app).hits == hits + 1
    with get_store(fast_app).write() as tx:
        shown = [i for i, feeds in tx.feeds_of(tx.article_ids()).items() if "all" in feeds]
        tx.delete_articles(shown[:1])
    hits = fastpath.of(fast_app).hits
    after = client.get("/feeds/all.atom")
    assert fastpath.of(fast_app).hits == hits
    assert after.get_data() != before.get_data()


def test_fast_path_is_off_without_public_base_url(tmp_path):
    app = create_app({"API_ACCESS": "public"}, tmp_path / "instance")
    assert fastpath.of(app) is None


def test_cache_is_bounded_by_bytes(tmp_path):
    app = create_app({"API_ACCESS": "public"}, tmp_path / "instance")
    cache = RenderCache(get_store(app), 64 * 1024, 3600)
    for n in range(100):
        cache.get(("doc", n), lambda n=n: Rendered.of(bytes([n % 251]) * 10_000, "text/plain", None))
    assert 0 < cache.size <= 64 * 1024
    assert len(cache._items) < 100
    assert cache.get(("doc", 99), lambda: Rendered.of(b"other", "text/plain", None)).body == bytes([99]) * 10_000


def test_concurrent_misses_render_once(tmp_path):
    app = create_app({"API_ACCESS": "public"}, tmp_path / "instance")
    cache = RenderCache(get_store(app), 1024 * 1024, 3600)
    release, calls = threading.Event(), []

    def build() -> Rendered:
        calls.append(1)
        release.wait(30)
        return Rendered.of(b"doc", "text/plain", None)

    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("key", build).body)) for _ in range(8)]
    for t in threads:
        t.start()
    for _ in range(300):  # until every thread waits on the one rendering
        if len(cache._building) == 1 and all(t.is_alive() for t in threads):
            break
        threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join(30)
    assert results == [b"doc"] * 8
    assert len(calls) == 1


@pytest.mark.parametrize("variable_set_later", [False, True])
def test_metrics_count_fast_answers(fast_app, tmp_path, monkeypatch, variable_set_later):
    """/metrics counts an answer the fast path gave like the app's: same route family, a cache hit.

    Also after ``PROMETHEUS_MULTIPROC_DIR`` appears in a process whose counters were made
    without it (an in-process ``serve``, as test_cli runs, sets it): /metrics must read the
    counters where prometheus_client keeps them, not an empty folder (this failed in full runs)."""
    if variable_set_later:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    client = fast_app.test_client()

    def counted() -> tuple[float, float]:
        text = client.get("/metrics").get_data(as_text=True)
        values = {}
        for line in text.splitlines():
            if not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return (values.get('topicfeed_http_requests_total{family="feeds",status="200"}', 0.0),
                values.get('topicfeed_render_cache_lookups_total{outcome="hit"}', 0.0))

    client.get("/feeds/all.atom")  # the app answers and is recorded
    requests, hits = counted()
    fast_hits = fastpath.of(fast_app).hits
    for _ in range(3):
        assert client.get("/feeds/all.atom").status_code == 200
    assert fastpath.of(fast_app).hits == fast_hits + 3
    assert counted() == (requests + 3, hits + 3)


def test_fast_answers_are_logged_like_the_apps(fast_app, monkeypatch):
    """The access line of a fast-path answer (written by ``server.front``) reads like the one of
    the app's answer to the same request: method, target, status and bytes sent."""
    import io
    import logging
    import re

    from server import front
    from server.logs import configure_logging
    from server.requestlog import flush

    stream = io.StringIO()
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.StreamHandler(stream)])
    monkeypatch.setattr(logging.getLogger("topicfeed.access"), "level", logging.INFO)
    configure_logging("text")
    front.of(fast_app).log_requests()
    client = fast_app.test_client()
    hits = fastpath.of(fast_app).hits
    sizes = []
    for _ in range(2):
        with client.get("/feeds/all.atom?limit=3", headers={"Accept-Encoding": "gzip"}) as resp:  # closed, as servers do
            sizes.append(len(resp.get_data()))
    with client.head("/feeds/all.atom?limit=3") as head:
        assert head.status_code == 200
    assert fastpath.of(fast_app).hits == hits + 1  # the second GET; the HEAD was the app's (a new variant)
    flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    for line, size in zip(lines, sizes + [0]):
        verb = "HEAD" if size == 0 else "GET"
        assert re.search(rf' topicfeed\.access 127\.0\.0\.1 "{verb} /feeds/all\.atom\?limit=3" 200 {size} \d+\.\dms$', line), line


def test_metrics_counts_lose_nothing_between_threads():
    from server.metrics import REQUESTS, Tally

    tally = Tally(REQUESTS)  # never flushed here: the process's real counter stays as it is
    threads = [threading.Thread(target=lambda: [tally.inc(("feeds", "200")) for _ in range(20_000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tally.values() == {("feeds", "200"): 80_000}
