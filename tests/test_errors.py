"""Every error path, and the one shape each surface answers with (server/errors.py)."""
from __future__ import annotations

import json
import re
import shutil
from http import HTTPStatus

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from feeds.importer import sync
from server import create_app, get_store
from server.cli import main as cli

from .test_golden import CONTENT


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    content = tmp_path_factory.mktemp("content") / "site"
    shutil.copytree(CONTENT, content)
    instance = tmp_path_factory.mktemp("errors") / "instance"
    app = create_app({"VERSION_TTL": 0, "CONTENT_DIRS": [str(content)], "MAX_BODY_BYTES": 4096}, instance)
    sync(get_store(app), [content])
    runner = app.test_cli_runner()
    admin = runner.invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    added = json.loads(runner.invoke(cli, ["clients", "add", "t", "--server-url", "http://x", "--json",
                                           "--instance", str(instance)]).output)
    return {"app": app, "admin": {"Authorization": f"Bearer {admin}"},
            "client": {"Authorization": f"Bearer {added['token']}"}}


NEW = {"title": "Error paths", "webUrl": "https://example.org/error-paths", "publishedDateTime": "2024-03-03T10:00:00Z"}

# (method, path, auth, body, status, parameter named in the problem, or None)
CASES = [
    ("GET", "/feeds/topics/nope.atom", None, None, 404, None),
    ("GET", "/feeds/providers/nope.example.rss", None, None, 404, None),
    ("GET", "/feeds/all.atom?limit=0", None, None, 400, None),
    ("GET", "/feeds/all.json?min_quality=abc", None, None, 400, None),
    ("GET", "/feeds/private/not-a-token.atom", None, None, 404, None),
    ("GET", "/no/such/page", None, None, 404, None),
    ("POST", "/feeds/all.atom", None, None, 405, None),
    ("GET", "/api/v1/topics", None, None, 401, None),
    ("GET", "/api/v1/topics", "forged", None, 401, None),
    ("GET", "/api/v1/providers", None, None, 401, None),
    ("GET", "/api/v1/no-such-route", "client", None, 404, None),
    ("DELETE", "/api/v1/topics", "client", None, 405, None),
    ("GET", "/api/v1/articles/no-such-article", "client", None, 404, None),
    ("GET", "/api/v1/topics/nope/articles", "client", None, 404, None),
    ("GET", "/api/v1/topics/robots/articles?page=x", "client", None, 400, "page"),
    ("GET", "/api/v1/topics/robots/articles?per_page=101", "client", None, 400, "per_page"),
    ("GET", "/api/v1/topics/robots/articles?min_heat=x", "client", None, 400, "min_heat"),
    ("GET", "/feeds/all.atom?min_quality=9223372036854775808", None, None, 400, None),
    ("GET", "/feeds/topics/robots.rss?min_heat=%C2%B2", None, None, 400, None),
    ("GET", "/api/v1/topics/robots/articles?min_quality=9223372036854775808", "client", None, 400, "min_quality"),
    ("GET", "/api/v1/topics/robots/articles?page=461168601842738792", "client", None, 400, "page"),
    ("GET", "/api/v1/topics/robots/articles?page=%C2%B2", "client", None, 400, "page"),
    ("GET", "/api/v1/topics/robots/articles?page=" + "9" * 5000, "client", None, 400, "page"),
    ("GET", "/api/v1/topics/robots/articles?min_heat=%D9%A1%D9%A2", "client", None, 400, "min_heat"),
    ("GET", "/api/v1/lookup", "client", None, 400, "prefix"),
    ("GET", "/api/v1/lookup?prefix=zz", "client", None, 400, "prefix"),
    ("GET", "/api/v1/lookup?url=ftp://example.org/x", "client", None, 400, "url"),
    ("GET", "/api/v1/private-feed-url?feed=all", "admin", None, 403, None),
    ("GET", "/api/v1/private-feed-url?feed=all&ext=xml", "client", None, 400, "ext"),
    ("GET", "/api/v1/private-feed-url?feed=bogus", "client", None, 400, "feed"),
    ("GET", "/api/v1/private-feed-url?feed=topics/no-such-topic", "client", None, 400, "feed"),
    ("GET", "/api/v1/private-feed-url?feed=all&limit=0", "client", None, 400, "limit"),
    ("GET", "/api/news/nope/index.json", "client", None, 404, None),
    ("GET", "/api/news/robots/page/0/index.json", "client", None, 404, None),
    ("GET", "/api/news/robots/page/99/index.json", "client", None, 404, None),
    ("POST", "/api/v1/articles", None, NEW, 401, None),
    ("POST", "/api/v1/articles", "client", NEW, 401, None),
    ("POST", "/api/v1/articles", "admin", b"{not json", 400, None),
    ("POST", "/api/v1/articles", "admin", b"[1, 2]", 400, None),
    ("POST", "/api/v1/articles", "admin", b"x" * 5000, 413, None),
    ("POST", "/api/v1/articles", "admin", b"[" * 4000, 400, None),
    ("POST", "/api/v1/articles", "admin", {**NEW, "id": "bad id!"}, 400, None),
    ("POST", "/api/v1/articles", "admin", {"title": "no url"}, 400, None),
    ("POST", "/api/v1/articles", "admin", {**NEW, "id": "2024-03-01-robots-learn-to-fold-laundry"}, 409, None),
    ("PUT", "/api/v1/articles/bad%20id", "admin", NEW, 400, None),
    ("DELETE", "/api/v1/articles/no-such-article", "admin", None, 404, None),
]


def call(env, method, path, auth, body):
    headers = dict(env[auth]) if auth in ("admin", "client") else {}
    if auth == "forged":
        headers["Authorization"] = "Bearer forged.token.value"
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body, "content_type": "application/json"} if body else {}
    return env["app"].test_client().open(path, method=method, headers=headers, **kwargs)


@pytest.mark.parametrize("method,path,auth,body,status,parameter", CASES, ids=[f"{c[0]} {c[1]} {c[4]}" for c in CASES])
def test_error_shape(env, method, path, auth, body, status, parameter):
    resp = call(env, method, path, auth, body)
    assert resp.status_code == status, resp.get_data(as_text=True)
    text = resp.get_data(as_text=True)
    assert "Traceback" not in text
    if path.startswith("/api/"):
        assert resp.content_type == "application/problem+json"
        problem = resp.json
        expected_keys = {"type", "title", "status", "detail"} | ({"parameter"} if parameter else set())
        assert set(problem) == expected_keys
        assert problem["type"] == "about:blank" and problem["status"] == status
        assert problem["title"] == HTTPStatus(status).phrase  # RFC 9457 §4.2.1
        assert problem["detail"] and "\n" not in problem["detail"]
        if parameter:
            assert problem["parameter"] == parameter and parameter in problem["detail"]
    else:
        assert resp.content_type == "text/plain; charset=utf-8"
        assert text.endswith("\n") and text.strip()


def test_every_api_rule_is_covered_by_an_error_case(env):
    """A new API route needs its error paths added above."""
    app = env["app"]
    rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/")}
    covered = {rule for rule in rules if any(_matches(rule, case[1]) for case in CASES)}
    assert covered == rules, sorted(rules - covered)


def _matches(rule: str, path: str) -> bool:
    pattern = re.sub(r"<[^>]+>", "[^/?]+", rule)
    return re.fullmatch(pattern + r"(\?.*)?", path) is not None


INTEGER_PARAMS = [("/feeds/all.atom", "limit"), ("/feeds/all.json", "min_quality"), ("/feeds/all.rss", "min_heat"),
                  ("/api/v1/topics/robots/articles", "page"), ("/api/v1/topics/robots/articles", "per_page"),
                  ("/api/v1/topics/robots/articles", "min_heat")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(INTEGER_PARAMS), st.one_of(st.integers(), st.text(max_size=30)))
def test_any_integer_parameter_value_gives_200_or_a_400_naming_it(env, where, value):
    path, name = where
    resp = env["app"].test_client().get(path, query_string={name: str(value)}, headers=env["client"])
    assert resp.status_code in (200, 400), resp.get_data(as_text=True)
    if resp.status_code == 400:
        assert name in resp.get_data(as_text=True)
