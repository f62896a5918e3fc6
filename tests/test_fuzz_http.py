"""A bounded fuzz run over real HTTP on loopback: no request shape gives a 5xx (issue: inputs)."""
from __future__ import annotations

import json
import urllib.request

import pytest


from . import fuzz
from .conftest import LiveServer

REQUESTS_PER_MODE = 5000


@pytest.mark.parametrize("access", ["paired", "public"])
def test_fuzzed_requests_never_get_5xx(tmp_path, access):
    target = fuzz.prepare_target(tmp_path, f'api_access = "{access}"\n')
    server = LiveServer(target.instance)
    try:
        statuses = fuzz.run(server.port, REQUESTS_PER_MODE, seed=8 if access == "paired" else 9,
                            tokens=target.tokens, article_ids=target.article_ids)
        failures = {k: v for k, v in statuses.items() if isinstance(k, tuple)}
        assert not failures, failures
        assert sum(v for k, v in statuses.items() if isinstance(k, int)) >= REQUESTS_PER_MODE * 0.99
        assert statuses[200] > 100 and statuses[400] > 100 and statuses[404] > 100  # the run reached the handlers
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ok"
    finally:
        server.stop()
