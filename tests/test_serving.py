"""``topicfeed serve --server``: every supported HTTP server answers the same bytes and
headers for a feed (through the fast path, since public_base_url is set), limits map onto
it, and its processes end with it."""
from __future__ import annotations

import os
import urllib.request

import pytest

from feeds.importer import sync
from server import create_app, get_store
from server.serving import SERVERS, Limits

from .conftest import LiveServer
from .test_golden import CONTENT

PATH = "/feeds/topics/robots.atom"


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving") / "instance"
    app = create_app({}, path)
    sync(get_store(app), [CONTENT])
    get_store(app).close()
    return path


def fetch(url: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
        return resp.status, resp.read(), {k: v for k, v in resp.headers.items() if k not in ("Date", "Server")}


@pytest.mark.parametrize("server", SERVERS)
def test_every_server_answers_the_same_feed(instance, server):
    env = {"TOPICFEED_PUBLIC_BASE_URL": "https://feeds.example.net"}
    reference = LiveServer(instance, env, ["--server", "granian"]) if server != "granian" else None
    live = LiveServer(instance, env, ["--server", server, "--threads", "4"])
    try:
        for headers in ({}, {"Accept-Encoding": "gzip"}):
            first = fetch(live.url + PATH, headers)
            again = fetch(live.url + PATH, headers)  # answered by the fast path
            assert first == again
            assert first[0] == 200 and first[1]
            if reference is not None:
                assert fetch(reference.url + PATH, headers)[1] == first[1]
    finally:
        live.stop()
        if reference is not None:
            reference.stop()
    assert live.proc.returncode is not None


def test_one_process_servers_refuse_workers(instance):
    from click.testing import CliRunner

    from server.cli import main

    out = CliRunner().invoke(main, ["serve", "--instance", str(instance), "--server", "waitress", "--workers", "2"])
    assert out.exit_code == 2
    assert "--workers: waitress runs one process" in out.output


def test_limits_come_from_the_settings():
    limits = Limits.of({"CONNECTION_LIMIT": 50, "HEADER_TIMEOUT": 7, "MAX_BODY_BYTES": 1000})
    assert (limits.connections, limits.header_timeout, limits.body_bytes, limits.header_bytes) == (50, 7, 1000, 32 * 1024)
