"""``topicfeed serve --server``: every supported HTTP server gives the same answers, status
and headers included, to the HTTP exchanges of pairing the extension (a signed API answer, a
401 for a bad token) and of a feed reader (the fast path, 304s, HEAD, 404), refuses an
oversized body before reading it, runs the WebSub worker in one process, and ends with its
processes."""
from __future__ import annotations

import http.client
import json
import os
import time

import pytest

from feeds.importer import sync
from server import create_app, get_store
from server.clients import add_client, secret_for, token_for
from server.context import master_keys
from server.serving import SERVERS, Limits
from server.signing import verify_object

from .conftest import LiveServer
from .test_golden import CONTENT

PATH = "/feeds/topics/robots.atom"
BASE = "https://feeds.example.net"
# hop-by-hop or per-server headers; everything else the app sends must reach the client as sent
SERVER_OWN = {"date", "server", "connection", "keep-alive", "transfer-encoding"}


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving") / "instance"
    app = create_app({}, path)
    sync(get_store(app), [CONTENT])
    get_store(app).close()
    return path


@pytest.fixture(scope="module")
def client(instance):
    """A paired client, as `topicfeed clients add` makes one: its bearer token and signing secret."""
    app = create_app({}, instance)
    store, keys = get_store(app), master_keys(app)
    added = add_client(store, keys, "browser")
    store.close()
    return {"token": token_for(added, keys), "secret": secret_for(added, keys)}


def ask(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    """(status, headers with lower-case names minus the server's own, body) over one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return (resp.status, {k.lower(): v for k, v in resp.getheaders() if k.lower() not in SERVER_OWN},
                resp.read())
    finally:
        conn.close()


def signed_everywhere(value, secret: str) -> bool:
    """Every object carrying ``secured`` verifies with the client's secret (what the extension checks)."""
    if isinstance(value, list):
        return all(signed_everywhere(v, secret) for v in value)
    if isinstance(value, dict):
        inner = all(signed_everywhere(v, secret) for k, v in value.items() if k != "secured")
        return inner and (verify_object(value, secret) if "secured" in value else True)
    return True


def exchanges(port: int, client: dict[str, str]) -> dict[str, tuple]:
    """The extension's pairing exchange and a feed reader's requests, answered by one server."""
    api = {"Accept": "application/json"}
    out = {
        "pair": ask(port, "GET", "/api/v1/providers", {**api, "Authorization": f"Bearer {client['token']}"}),
        "bad token": ask(port, "GET", "/api/v1/providers", {**api, "Authorization": f"Bearer {client['token'][:-4]}AAAA"}),
        "no token": ask(port, "GET", "/api/v1/providers", api),
        "feed": ask(port, "GET", PATH, {}),
        "feed again": ask(port, "GET", PATH, {}),  # the fast path
        "feed gzip": ask(port, "GET", PATH, {"Accept-Encoding": "gzip"}),
        "feed head": ask(port, "HEAD", PATH, {}),
        "missing": ask(port, "GET", "/feeds/topics/no-such-topic.atom", {}),
    }
    out["feed 304"] = ask(port, "GET", PATH, {"If-None-Match": out["feed"][1]["etag"]})
    return out


@pytest.fixture(scope="module")
def reference(instance, client):
    """waitress's answers, which every server must give too."""
    live = LiveServer(instance, {"TOPICFEED_PUBLIC_BASE_URL": BASE}, ["--server", "waitress"])
    try:
        return exchanges(live.port, client)
    finally:
        live.stop()


@pytest.mark.parametrize("server", SERVERS)
def test_every_server_gives_the_same_answers_to_pairing_and_feed_requests(instance, client, reference, server):
    live = LiveServer(instance, {"TOPICFEED_PUBLIC_BASE_URL": BASE}, ["--server", server, "--threads", "4"])
    try:
        got = exchanges(live.port, client)
        # granian sent every answer of the access-log layer as 200 without headers while that
        # layer was a generator (PEP 3333 allows start_response in the first iteration; granian
        # issue #845 will not): the extension saw a 401 as a 200 and could not say "rejected"
        status, headers, body = got["pair"]
        assert status == 200 and headers["content-type"].startswith("application/json")
        assert signed_everywhere(json.loads(body), client["secret"])
        for name in ("bad token", "no token"):
            assert got[name][0] == 401 and got[name][1]["content-type"] == "application/problem+json", name
        assert got["feed"][0] == got["feed again"][0] == 200 and got["feed 304"][0] == 304
        assert got["feed gzip"][1]["content-encoding"] == "gzip" and got["missing"][0] == 404
        assert got["feed head"][0] == 200 and got["feed head"][2] == b""
        for name, (status, headers, body) in reference.items():
            if name == "pair":  # signed just now: the same objects, other signatures
                assert (got[name][0], got[name][1]) == (status, headers)
                continue
            assert got[name] == (status, headers, body), (server, name)
    finally:
        live.stop()
    assert live.proc.returncode is not None


@pytest.mark.parametrize("server", SERVERS)
def test_an_oversized_body_is_refused_before_it_is_read(instance, server):
    """413 from the Content-Length while most of the body is still unsent (``max_body_bytes``)."""
    live = LiveServer(instance, {"TOPICFEED_PUBLIC_BASE_URL": BASE, "TOPICFEED_MAX_BODY_BYTES": "1024"},
                      ["--server", server])
    try:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
        conn.putrequest("POST", "/websub")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(50 * 1024 * 1024))
        conn.endheaders(b"hub.mode=subscribe&" + b"x" * 4096)  # the rest is never sent
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        live.stop()


def lock_holders(lock) -> list[int]:
    """PIDs holding a flock on ``lock`` (from /proc/locks)."""
    inode = os.stat(lock).st_ino
    with open("/proc/locks") as locks:
        rows = [line.split() for line in locks]
    return [int(f[-4]) for f in rows if "FLOCK" in f and f[-3].endswith(f":{inode}")]


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_the_websub_worker_runs_in_one_process_of_several(instance, server):
    live = LiveServer(instance, {"TOPICFEED_PUBLIC_BASE_URL": BASE}, ["--server", server, "--workers", "2"])
    try:
        lock = instance / "websub-worker.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock_holders(lock)) and time.monotonic() < deadline:
            time.sleep(0.2)
        holders = lock_holders(lock)
        assert len(holders) == 1
        assert holders[0] != live.proc.pid  # a serving worker, not the supervisor
    finally:
        live.stop()


def test_one_process_servers_refuse_workers(instance):
    from click.testing import CliRunner

    from server.cli import main

    out = CliRunner().invoke(main, ["serve", "--instance", str(instance), "--server", "waitress", "--workers", "2"])
    assert out.exit_code == 2
    assert "--workers: waitress runs one process" in out.output


def test_limits_come_from_the_settings():
    limits = Limits.of({"CONNECTION_LIMIT": 50, "HEADER_TIMEOUT": 7, "MAX_BODY_BYTES": 1000})
    assert (limits.connections, limits.header_timeout, limits.body_bytes, limits.header_bytes) == (50, 7, 1000, 32 * 1024)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_lines_written_directly_read_as_loggings_own(log_format, monkeypatch):
    """The access log skips ``logging`` for speed when the root logger has the one stream
    handler `serve` sets up; its lines must be the ones ``logging`` would write (the JSON fields,
    the text layout), and with any other set-up the lines go through ``logging``."""
    import io
    import logging
    import re

    from server.logs import configure_logging
    from server.requestlog import RequestLog, flush

    def app(environ, start_response):
        start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
        return [b"none", b"here"]

    stream = io.StringIO()
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler(stream)])
    monkeypatch.setattr(logging.getLogger("topicfeed.access"), "level", logging.INFO)
    configure_logging(log_format)
    logged = RequestLog(app)
    assert logged.lines is not None  # the direct writer was chosen
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/feeds/private/secret.atom", "QUERY_STRING": "url=x",
               "REMOTE_ADDR": "192.0.2.1"}
    assert logged(environ, lambda *a: None) == [b"none", b"here"]
    flush()  # the line is queued; the writer thread would write it within FLUSH_SECONDS
    logging.getLogger("topicfeed.access").info("%s", "the same line through logging")
    direct, through = stream.getvalue().splitlines()
    if log_format == "json":
        direct, through = json.loads(direct), json.loads(through)
        assert direct.keys() == through.keys() and direct["logger"] == through["logger"] == "topicfeed.access"
        assert direct["level"] == through["level"] == "INFO"
        assert len(direct["time"]) == len(through["time"])
        message = direct["message"]
    else:
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} topicfeed\.access "
        assert re.match(stamp + "the same line", through) and re.match(stamp, direct)
        message = direct.split(" topicfeed.access ", 1)[1]
    assert re.fullmatch(r'192\.0\.2\.1 "GET /feeds/private/REDACTED\.atom\?url=REDACTED" 404 8 \d+\.\dms', message)

    monkeypatch.setattr(root, "handlers", [logging.StreamHandler(stream), logging.StreamHandler(io.StringIO())])
    assert RequestLog(app).lines is None  # another set-up: through logging
