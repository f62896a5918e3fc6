"""Every corpus feed, in every format, read back with feedparser and checked against the records."""
from __future__ import annotations

import json
from datetime import datetime

import feedparser
import pytest

from feeds.article import entry_id
from server import get_store


def public_records(app) -> dict[str, dict]:
    store = get_store(app)
    from feeds.query import FeedQuery
    return {a.id: a for a in store.recent("all", None, FeedQuery(limit=200))}


def topic_slugs(app) -> list[str]:
    return [t.slug for t in get_store(app).topics() if t.count]


def check_xml_feed(data: bytes, expected: list, names: dict[str, str]) -> None:
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.feed.title
    assert len(parsed.entries) == len(expected)
    for entry, article in zip(parsed.entries, expected):
        record = article.record
        assert entry.id == entry_id(article.id)
        assert entry.title == record["title"]
        assert entry.link == (record.get("webUrl") or record["originalUrl"])
        published = datetime.fromisoformat(record["publishedDateTime"])
        assert entry.published_parsed[:6] == published.utctimetuple()[:6]
        terms = {t.term for t in entry.get("tags", [])}  # readers show the term: the topic's name
        assert terms == {names[s] for s in article.topics}


def test_every_topic_feed_in_every_format(corpus_app, corpus_client):
    names = {t.slug: t.name for t in get_store(corpus_app).topics()}
    records = public_records(corpus_app)
    slugs = topic_slugs(corpus_app)
    assert len(slugs) > 20
    for slug in slugs:
        expected = sorted((a for a in records.values() if slug in a.topics), key=lambda a: (-a.published_ts, a.id))[:50]
        for ext in ("rss", "atom"):
            resp = corpus_client.get(f"/feeds/topics/{slug}.{ext}")
            assert resp.status_code == 200
            check_xml_feed(resp.data, expected, names)
        doc = json.loads(corpus_client.get(f"/feeds/topics/{slug}.json").data)
        assert doc["version"] == "https://jsonfeed.org/version/1.1"
        assert [i["id"] for i in doc["items"]] == [entry_id(a.id) for a in expected]
        assert [i["title"] for i in doc["items"]] == [a.record["title"] for a in expected]


def test_all_and_provider_feeds(corpus_app, corpus_client):
    names = {t.slug: t.name for t in get_store(corpus_app).topics()}
    records = public_records(corpus_app)
    ordered = sorted(records.values(), key=lambda a: (-a.published_ts, a.id))
    for ext in ("rss", "atom"):
        check_xml_feed(corpus_client.get(f"/feeds/all.{ext}?limit=200").data, ordered, names)
    for provider in get_store(corpus_app).providers():
        if not provider.count:
            continue
        expected = [a for a in ordered if a.record["provider"]["domain"] == provider.domain]
        for ext in ("rss", "atom"):
            check_xml_feed(corpus_client.get(f"/feeds/providers/{provider.domain}.{ext}").data, expected, names)


def test_unpublished_and_duplicates_never_appear(corpus_app, corpus_client):
    store = get_store(corpus_app)
    hidden = [r for r in store.iter_index_rows() if not r.published or r.duplicate_of]
    assert len(hidden) > 40
    feed = feedparser.parse(corpus_client.get("/feeds/all.atom?limit=200").data)
    ids = {e.id for e in feed.entries}
    assert not ids & {entry_id(r.id) for r in hidden}
    assert len(ids) == store.stats()["public"]


@pytest.mark.parametrize("query,check", [
    ("limit=3", lambda a: True),
    ("min_quality=100", lambda a: (a.record.get("quality") or -1) >= 100),
    ("min_heat=0", lambda a: (a.record.get("heat") if a.record.get("heat") is not None else -10**9) >= 0),
    ("type=video", lambda a: a.record.get("type") == "video"),
    ("q=github", lambda a: "github" in (a.record["title"] + a.record.get("excerpt", "")).lower()),
])
def test_filters(corpus_app, corpus_client, query, check):
    records = public_records(corpus_app)
    ordered = sorted(records.values(), key=lambda a: (-a.published_ts, a.id))
    expected = [a for a in ordered if check(a)][: 3 if query == "limit=3" else 50]
    assert expected, f"corpus has nothing matching {query}"
    feed = feedparser.parse(corpus_client.get(f"/feeds/all.atom?{query}").data)
    assert [e.id for e in feed.entries] == [entry_id(a.id) for a in expected]
    described = {"limit=3": "latest 3", "min_quality=100": "quality ≥ 100", "min_heat=0": "heat ≥ 0",
                 "type=video": "type video", "q=github": "matching “github”"}[query]
    assert feed.feed.title == f"All articles ({described})"  # says what the filter is


def test_feed_metadata(corpus_client):
    atom = feedparser.parse(corpus_client.get("/feeds/topics/ai.atom").data)
    assert atom.feed.title == "AI news"
    assert any(l.rel == "self" and l.href.endswith("/feeds/topics/ai.atom") for l in atom.feed.links)
    assert atom.feed.logo.startswith("https://everyday-cc.github.io/ai/assets/images/topics/ai")
    newest = max(e.updated_parsed for e in atom.entries)
    assert atom.feed.updated_parsed == newest
    rss = feedparser.parse(corpus_client.get("/feeds/topics/ai.rss").data)
    assert any(l.rel == "self" and l.href.endswith("/feeds/topics/ai.rss") for l in rss.feed.links)
    assert rss.entries[0].media_thumbnail[0]["url"].startswith("https://")
    assert rss.entries[0].author  # dc:creator = provider
    assert rss.feed.image.href == atom.feed.logo


def test_opml_lists_every_topic_feed(corpus_app, corpus_client):
    from xml.etree import ElementTree as ET
    resp = corpus_client.get("/feeds/index.opml")
    assert resp.content_type.startswith("text/x-opml")
    outlines = ET.fromstring(resp.data).findall("./body/outline")
    assert {o.get("xmlUrl").rsplit("/", 1)[1] for o in outlines} == {f"{s}.atom" for s in topic_slugs(corpus_app)}
    for o in outlines[:5]:
        assert corpus_client.get(o.get("xmlUrl").replace("http://localhost", "")).status_code == 200


def test_html_index_has_autodiscovery(corpus_client):
    html = corpus_client.get("/").data.decode()
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert "/feeds/topics/ai.atom" in html and "/feeds/index.opml" in html
