"""The HTTP edge (issue 9): limits applied by `topicfeed serve`, slow clients, log lines,
security headers, trusted hosts, proxy headers and Accept-Encoding."""
from __future__ import annotations

import gzip
import shutil
import socket
import time
import urllib.request

import pytest

from feeds.importer import sync
from server import create_app, get_store

from .conftest import LiveServer
from .slowclients import SlowClients, probe
from .test_golden import CONTENT


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edge")
    content = tmp / "site"
    shutil.copytree(CONTENT, content)
    instance = tmp / "instance"
    app = create_app({}, instance)
    sync(get_store(app), [content])
    get_store(app).close()
    server = LiveServer(instance, {"TOPICFEED_API_ACCESS": "public", "TOPICFEED_MAX_BODY_BYTES": "65536"})
    yield server
    server.stop()


def raw(port: int, request: bytes, timeout: float = 30) -> bytes:
    """Send bytes as they are; the server's whole answer (it closes or we time out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_150_slow_clients_do_not_block_a_probe(live):
    slow = SlowClients(live.port, 150, interval=2.0)
    try:
        time.sleep(3)  # every slow client has sent part of its header
        assert probe(live.url + "/healthz", timeout=60) < 60
        assert probe(live.url + "/feeds/all.atom", timeout=60) < 60
        assert slow.open_count() >= 150  # they were all still open while the probes were answered
    finally:
        slow.close()


def test_a_huge_body_is_refused_before_it_is_sent(live):
    started = time.monotonic()
    answer = raw(live.port, b"POST /feeds/all.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert time.monotonic() - started < 30  # answered without waiting for 200 MB


def test_log_lines_are_escaped_and_secrets_redacted(live):
    raw(live.port, b"GET /feeds/x%0D%0A127.0.0.1%20%22GET%20/forged%22%20200 HTTP/1.1\r\nHost: x\r\n\r\n")
    token = "eyJjIjoiYWJjIn0.c2lnbmF0dXJl"
    raw(live.port, f"GET /feeds/private/{token}.atom HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw(live.port, b"GET /api/v1/lookup?url=https://secret.example/page&prefix=1a2b3c4d HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "lookup?" not in live.access_log():
        time.sleep(0.1)
    log = live.access_log()
    assert '"GET /feeds/x\\x0d\\x0a127.0.0.1 \\x22GET /forged\\x22 200" 404' in log
    assert not any(line.startswith('127.0.0.1 "GET /forged') for line in log.splitlines())
    assert token not in log and '"GET /feeds/private/REDACTED.atom"' in log
    assert "secret.example" not in log and "1a2b3c4d" not in log
    assert '"GET /api/v1/lookup?url=REDACTED&prefix=REDACTED"' in log


def test_tokens_and_lookups_in_odd_spellings_are_redacted_too(live):
    """A double slash is redirected to the working feed; a trailing slash is a typo of it; the
    app decodes `%75rl` to `url`: each still carries a capability or a reader's page."""
    token = "eyJjIjoib2RkIn0.b2Rkc2lnbmF0dXJl"
    raw(live.port, f"GET /feeds//private/{token}.atom HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw(live.port, f"GET /feeds/private/{token}.rss/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw(live.port, b"GET /api/v1/lookup?%75rl=https://odd-secret.example/page HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "%75rl" not in live.access_log():
        time.sleep(0.1)
    log = live.access_log()
    assert token not in log and "odd-secret.example" not in log, log
    assert '"GET /feeds//private/REDACTED.atom" 308' in log and '"GET /api/v1/lookup?%75rl=REDACTED"' in log


def test_security_headers(live):
    with urllib.request.urlopen(live.url + "/", timeout=30) as resp:
        headers = resp.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none' covers scripts
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    with urllib.request.urlopen(live.url + "/feeds/all.atom", timeout=30) as resp:
        assert resp.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" not in resp.headers


@pytest.mark.parametrize("accept,gzipped", [("gzip", True), ("gzip;q=0", False), ("*;q=0", False),
                                            ("br, *", True), ("gzip;q=0, *", False), ("identity", False)])
def test_gzip_only_when_really_accepted(tmp_path, accept, gzipped):
    app = create_app({"VERSION_TTL": 0}, tmp_path / "i")
    sync(get_store(app), [CONTENT])
    resp = app.test_client().get("/feeds/all.atom", headers={"Accept-Encoding": accept})
    assert (resp.headers.get("Content-Encoding") == "gzip") is gzipped
    body = gzip.decompress(resp.data) if gzipped else resp.data
    assert body.startswith(b"<?xml")


def test_trusted_hosts(tmp_path):
    app = create_app({"TRUSTED_HOSTS": ["feeds.example.org"]}, tmp_path / "i")
    sync(get_store(app), [CONTENT])
    client = app.test_client()
    assert client.get("/feeds/all.atom", headers={"Host": "evil.example"}).status_code == 400
    ok = client.get("/feeds/all.atom", headers={"Host": "feeds.example.org"})
    assert ok.status_code == 200 and b"http://feeds.example.org/feeds/all.atom" in ok.data
    assert b"evil" not in ok.data
    open_app = create_app({}, tmp_path / "j")
    assert open_app.test_client().get("/healthz", headers={"Host": "any.example"}).status_code == 200


def test_proxy_fix_hops(tmp_path):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "feeds.example.org", "X-Forwarded-For": "203.0.113.9"}
    behind = create_app({"PROXY_FIX_HOPS": 1}, tmp_path / "i")
    sync(get_store(behind), [CONTENT])
    assert b"https://feeds.example.org/feeds/all.atom" in behind.test_client().get("/feeds/all.atom", headers=forwarded).data
    direct = create_app({}, tmp_path / "j")
    sync(get_store(direct), [CONTENT])
    assert b"feeds.example.org" not in direct.test_client().get("/feeds/all.atom", headers=forwarded).data
