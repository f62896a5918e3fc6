"""A bounded fuzz run over real HTTP on loopback: no request shape gives a 5xx (issue: inputs)."""
from __future__ import annotations

import json
import shutil
import urllib.request

import pytest

from feeds.importer import sync
from server import create_app, get_store
from server.cli import main as cli

from . import fuzz
from .conftest import LiveServer
from .test_golden import CONTENT

REQUESTS_PER_MODE = 5000


@pytest.mark.parametrize("access", ["paired", "public"])
def test_fuzzed_requests_never_get_5xx(tmp_path, access):
    content = tmp_path / "site"
    shutil.copytree(CONTENT, content)
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'content_dirs = ["{content}"]\napi_access = "{access}"\n')
    app = create_app({}, instance)
    sync(get_store(app), [content])
    runner = app.test_cli_runner()
    admin = runner.invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    client = json.loads(runner.invoke(cli, ["clients", "add", "fuzz", "--server-url", "http://x", "--json",
                                            "--instance", str(instance)]).output)
    article_ids = [p.stem for p in (content / "_news").glob("*.md")]
    get_store(app).close()
    server = LiveServer(instance)
    try:
        statuses = fuzz.run(server.port, REQUESTS_PER_MODE, seed=8 if access == "paired" else 9,
                            tokens={"client": client["token"], "admin": admin}, article_ids=article_ids)
        failures = {k: v for k, v in statuses.items() if isinstance(k, tuple)}
        assert not failures, failures
        assert sum(v for k, v in statuses.items() if isinstance(k, int)) >= REQUESTS_PER_MODE * 0.99
        assert statuses[200] > 100 and statuses[400] > 100 and statuses[404] > 100  # the run reached the handlers
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ok"
    finally:
        server.stop()
