"""Every URL the server emits resolves on the same server, and filter values round-trip."""
from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings, strategies as st

from feeds.importer import sync
from server import create_app, get_store
from server.cli import main as cli
from server.export import export_urls
from server.links import Links

from .test_golden import CONTENT

BASE = "http://feeds.example.test"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    content = tmp_path_factory.mktemp("content") / "site"
    shutil.copytree(CONTENT, content)
    for i, q in enumerate(FILTER_VALUES):  # two articles per value, so its page 1 has a nextPage
        for half in (0, 1):
            (content / "_news" / f"2024-05-{i + 1:02d}-filter-{i}-{half}.md").write_text(
                f"---\ntitle: {json.dumps('Filter ' + q + ' ' + str(half))}\n"
                f"webUrl: https://example.org/filter/{i}/{half}\npublishedDateTime: 2024-05-{i + 1:02d}T1{half}:00:00Z\n"
                "topics: [Robots]\n---\n", encoding="utf-8")
    instance = tmp_path_factory.mktemp("links") / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'public_base_url = "{BASE}"\ncontent_dirs = ["{content}"]\n')
    app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0}, instance)
    sync(get_store(app), [content])
    return app


def local(url: str) -> str:
    """The request path of one of our absolute URLs (anything else fails the test)."""
    assert url.startswith(BASE + "/"), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def emitted_links(app) -> dict[str, list[str]]:
    """Every link the server hands out, by where it was found."""
    client = app.test_client()
    found: dict[str, list[str]] = {}
    atom = ET.fromstring(client.get("/feeds/topics/robots.atom?min_quality=1").data)
    found["feed self links"] = [l.get("href") for l in atom.iter(f"{ATOM}link") if l.get("rel") == "self"]
    found["feed self links"] += [client.get("/feeds/all.json").json["feed_url"]]
    found["opml"] = [o.get("xmlUrl") for o in ET.fromstring(client.get("/feeds/index.opml").data).iter("outline")]
    html = client.get("/").get_data(as_text=True)
    found["html index"] = re.findall(r'href="([^"]+)"', html)
    topics = client.get("/api/v1/topics").json
    found["api feeds"] = [topics["opml"]] + [u for t in topics["value"] for u in t["feeds"].values()]
    found["api feeds"] += [u for p in client.get("/api/v1/providers").json["value"] for u in p["feeds"].values()]
    page = client.get("/api/v1/topics/robots/articles?per_page=1").json
    found["nextPage"] = [page["nextPage"], page["path"]]
    with app.test_request_context("/"):
        found["export"] = list(export_urls(app, Links(BASE)))
    return found


def test_every_emitted_link_resolves(site):
    client = site.test_client()
    links = emitted_links(site)
    for where, urls in links.items():
        assert urls, where
        for url in urls:
            resp = client.get(local(url))
            assert resp.status_code == 200, (where, url, resp.status_code)


def test_curator_location_and_private_feed_urls_resolve(site):
    runner = site.test_cli_runner()
    client = site.test_client()
    admin = runner.invoke(cli, ["admin-token", "--instance", site.instance_path]).output.strip()
    created = client.post("/api/v1/articles", headers={"Authorization": f"Bearer {admin}"},
                          json={"title": "Links test", "webUrl": "https://example.org/links-test",
                                "publishedDateTime": "2024-03-03T10:00:00Z", "topics": ["Robots"]})
    assert created.status_code == 201, created.json
    assert client.get(local(created.headers["Location"])).status_code == 200
    added = runner.invoke(cli, ["--instance", site.instance_path, "clients", "add", "t", "--json"])
    assert added.exit_code == 0, added.output
    token = json.loads(added.output)["token"]
    minted = client.get("/api/v1/private-feed-url?feed=topics/robots&ext=rss",
                        headers={"Authorization": f"Bearer {token}"}).json["url"]
    assert client.get(local(minted)).status_code == 200
    client_id = json.loads(added.output)["id"]
    cli_url = runner.invoke(cli, ["clients", "feed-url", client_id, "all", "--instance", site.instance_path]).output.strip()
    assert client.get(local(cli_url)).status_code == 200


FILTER_VALUES = ["rust & c++", "a+b", "#tag", "100%", "two  spaces", "naïve café", "日本語", "a=b&c=d", "?x", "/slash"]


@pytest.mark.parametrize("q", FILTER_VALUES)
def test_filter_value_round_trips_through_next_page(site, q):
    client = site.test_client()
    first = client.get("/api/v1/topics/robots/articles", query_string={"q": q, "per_page": 1})
    assert first.status_code == 200 and [a["title"] for a in first.json["value"]] == [f"Filter {q} 1"]
    assert parse_qs(urlsplit(first.json["nextPage"]).query)["q"] == [q]
    second = client.get(local(first.json["nextPage"]))
    assert [a["title"] for a in second.json["value"]] == [f"Filter {q} 0"] and second.json["nextPage"] is None


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30))
def test_generated_values_round_trip_through_api_links(site, q):
    with site.test_request_context("/"):
        url = Links(BASE).api("api.v1.topic_articles", slug="robots", page=2, per_page=1, q=q)
    assert parse_qs(urlsplit(url).query, keep_blank_values=True) == {"q": [q], "page": ["2"], "per_page": ["1"]}


@pytest.mark.parametrize("q", FILTER_VALUES)
def test_filter_value_round_trips_through_private_feed_urls(site, q):
    runner = site.test_cli_runner()
    added = json.loads(runner.invoke(cli, ["clients", "add", "p", "--json", "--instance", site.instance_path]).output)
    client = site.test_client()
    minted = client.get("/api/v1/private-feed-url", query_string={"feed": "topics/robots", "ext": "json", "q": q},
                        headers={"Authorization": f"Bearer {added['token']}"})
    assert minted.status_code == 200, minted.json
    feed = client.get(local(minted.json["url"]))
    assert feed.status_code == 200
    self_url = feed.json["feed_url"]
    assert parse_qs(urlsplit(self_url).query)["q"] == [q.strip()]
