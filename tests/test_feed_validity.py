"""Checks the W3C feed validator makes, written from RFC 4287 (Atom), the RSS 2.0 profile and
JSON Feed 1.1 — the validator itself cannot be installed on these machines (no network)."""
from __future__ import annotations

import email.utils
import json
import re
from datetime import datetime
from xml.etree import ElementTree as ET

import pytest

from server import get_store

ATOM = "{http://www.w3.org/2005/Atom}"
URN_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def feed_paths(app) -> list[str]:
    store = get_store(app)
    paths = ["/feeds/all"] + [f"/feeds/topics/{t.slug}" for t in store.topics() if t.count]
    return paths + [f"/feeds/providers/{p.domain}" for p in store.providers() if p.count]


def http_url(value: str | None) -> bool:
    return bool(value) and re.match(r"^https?://[^\s/]+", value) is not None


def check_atom(data: bytes, self_url: str) -> None:
    root = ET.fromstring(data)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{ATOM}{name}")) == 1, name
    assert RFC3339.match(root.findtext(f"{ATOM}updated"))
    selfs = [l for l in root.findall(f"{ATOM}link") if l.get("rel") == "self"]
    assert len(selfs) == 1 and selfs[0].get("href") == self_url and selfs[0].get("type") == "application/atom+xml"
    feed_author = root.find(f"{ATOM}author") is not None
    assert http_url(root.findtext(f"{ATOM}icon")) and http_url(root.findtext(f"{ATOM}logo"))
    ids = set()
    for entry in root.findall(f"{ATOM}entry"):
        entry_id = entry.findtext(f"{ATOM}id")
        assert URN_UUID.match(entry_id) and entry_id not in ids
        ids.add(entry_id)
        assert (entry.findtext(f"{ATOM}title") or "").strip()
        assert RFC3339.match(entry.findtext(f"{ATOM}updated"))
        published = entry.findtext(f"{ATOM}published")
        assert RFC3339.match(published)
        assert datetime.fromisoformat(published) <= datetime.fromisoformat(entry.findtext(f"{ATOM}updated"))
        links = [l for l in entry.findall(f"{ATOM}link") if l.get("rel", "alternate") == "alternate"]
        assert len(links) == 1 and http_url(links[0].get("href"))
        assert feed_author or (entry.findtext(f"{ATOM}author/{ATOM}name") or "").strip(), "atom:author required"
        summary = entry.find(f"{ATOM}summary")
        assert summary is None or summary.get("type") == "html"  # escaped text: newsboat reads type="text" as HTML
        content = entry.find(f"{ATOM}content")
        assert content is None or (content.get("type") == "html" and (content.text or "").strip())
        for link in entry.findall(f"{ATOM}link"):  # RFC 4287 §4.2.7: rel from the registry, length an integer
            assert link.get("rel", "alternate") in ("alternate", "enclosure") and http_url(link.get("href"))
            if link.get("rel") == "enclosure":
                assert re.match(r"^image/[a-z0-9.+-]+$", link.get("type")) and link.get("length").isdigit()
        assert entry.find("{http://purl.org/dc/elements/1.1/}creator") is None  # one author, not two
        for cat in entry.findall(f"{ATOM}category"):
            assert cat.get("term") and not cat.get("label") and cat.get("scheme") in (None, root_scheme(root))


def root_scheme(root: ET.Element) -> str | None:
    """The one category scheme of a feed (every category of every entry uses the same)."""
    schemes = {c.get("scheme") for c in root.iter(f"{ATOM}category")}
    assert len(schemes) <= 1, schemes
    return next(iter(schemes), None)


def check_rss(data: bytes, self_url: str) -> None:
    root = ET.fromstring(data)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    for name in ("title", "link", "description"):
        assert (channel.findtext(name) or "").strip(), name
    assert http_url(channel.findtext("link"))
    selfs = [l for l in channel.findall(f"{ATOM}link") if l.get("rel") == "self"]
    assert len(selfs) == 1 and selfs[0].get("href") == self_url and selfs[0].get("type") == "application/rss+xml"
    assert email.utils.parsedate_to_datetime(channel.findtext("lastBuildDate"))
    image = channel.find("image")  # RSS 2.0 <image>: url (GIF, JPEG or PNG), title, link
    assert image is not None and http_url(image.findtext("url")) and image.findtext("title") and image.findtext("link")
    guids = set()
    for item in channel.findall("item"):
        assert (item.findtext("title") or "").strip()
        assert http_url(item.findtext("link"))
        guid = item.find("guid")
        assert guid.get("isPermaLink") == "false" and guid.text not in guids
        guids.add(guid.text)
        assert email.utils.parsedate_to_datetime(item.findtext("pubDate")).tzinfo is not None
        thumb = item.find("{http://search.yahoo.com/mrss/}thumbnail")
        assert thumb is None or http_url(thumb.get("url"))
        assert item.find("{http://search.yahoo.com/mrss/}group") is None
        assert item.find("author") is None  # RSS <author> must be an e-mail address; dc:creator is used instead
        enclosures = item.findall("enclosure")  # RSS 2.0: at most one, with url, length and type
        assert len(enclosures) <= 1
        for enc in enclosures:
            assert http_url(enc.get("url")) and enc.get("length").isdigit() and enc.get("type").startswith("image/")
        encoded = item.find("{http://purl.org/rss/1.0/modules/content/}encoded")
        assert encoded is None or (encoded.text or "").strip()


def check_json_feed(data: bytes, self_url: str) -> None:
    doc = json.loads(data)
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["title"] and doc["feed_url"] == self_url and http_url(doc["home_page_url"])
    assert http_url(doc["icon"]) and http_url(doc["favicon"])
    ids = set()
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"] not in ids
        ids.add(item["id"])
        assert "content_text" in item or "content_html" in item
        assert http_url(item["url"])
        assert RFC3339.match(item["date_published"]) and RFC3339.match(item["date_modified"])
        assert all(isinstance(t, str) for t in item.get("tags", []))
        for author in item.get("authors", []):
            assert author["name"]
        assert item.get("author") == (item["authors"][0] if item.get("authors") else None)  # JSON Feed 1.0 readers
        for attachment in item.get("attachments", []):
            assert http_url(attachment["url"]) and attachment["mime_type"].startswith("image/")


@pytest.mark.parametrize("ext,check", [("atom", check_atom), ("rss", check_rss), ("json", check_json_feed)])
def test_every_corpus_feed_is_valid(corpus_app, corpus_client, ext, check):
    for path in feed_paths(corpus_app):
        resp = corpus_client.get(f"{path}.{ext}?limit=200")
        assert resp.status_code == 200, path
        check(resp.data, f"http://localhost{path}.{ext}?limit=200")
        unfiltered = corpus_client.get(f"{path}.{ext}")
        check(unfiltered.data, f"http://localhost{path}.{ext}")
