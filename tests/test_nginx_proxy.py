"""Scale-out: nginx as a caching proxy (deploy/nginx-cache.conf) absorbs repeated feed requests."""
from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import feedparser
import pytest

from .conftest import free_port

CONFIG = Path(__file__).parents[1] / "deploy" / "nginx-cache.conf"


def get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.mark.reader
def test_nginx_caches_feeds_and_passes_the_api_through(live_corpus_server, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is not installed (.ci/run installs nginx-light)"
    port = free_port()
    conf = CONFIG.read_text().replace("{PREFIX}", str(tmp_path)).replace("{PORT}", str(port)) \
        .replace("{APP_PORT}", str(live_corpus_server.port))
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([nginx, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e",
                             str(tmp_path / "error.log"), "-g", "daemon off; user root;"])  # pytest tmp is root-only
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                get(base + "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        feed = "/feeds/topics/ai.atom?limit=7"
        before = live_corpus_server.access_log().count(f'"GET {feed}"')
        status, headers, body = get(base + feed)
        assert status == 200 and headers["X-Cache-Status"] == "MISS"
        assert len(feedparser.parse(body).entries) == 7
        for _ in range(5):
            status, headers, again = get(base + feed)
            assert status == 200 and headers["X-Cache-Status"] == "HIT" and again == body
        assert live_corpus_server.access_log().count(f'"GET {feed}"') == before + 1  # the app saw one request
        status, _, _ = get(base + feed, {"If-None-Match": headers["ETag"]})
        assert status == 304
        status, headers, _ = get(base + "/api/v1/topics")
        assert status == 200 and headers.get("X-Cache-Status") is None and "no-store" in headers["Cache-Control"]
    finally:
        proc.terminate()
        proc.wait(10)
