"""Per-feed change tracking (issue 10): Last-Modified and the feed's updated advance with its
bytes — on a backdated insert, an edit and a removal — and only the feeds that changed move."""
from __future__ import annotations

import html
import shutil
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import feedparser
import pytest
from click.testing import CliRunner

from feeds.article import entry_id
from feeds.feedspec import FeedRef
from feeds.importer import sync
from feeds.query import FeedQuery
from server import create_app, get_store
from server.cli import main as cli

from .conftest import corpus_roots

BACKDATED = {"title": "Backdated & <quoted> story",
             "excerpt": "Health IT & CIO: <tag> is text, a literal &amp; stays, \"quotes\" too 🤖 שלום עולם",
             "publishedDateTime": "2021-01-05T10:00:00Z", "type": "article",
             "webUrl": "https://www.infoworld.com/article/1111111/backdated-story.html",
             "provider": {"name": "InfoWorld", "domain": "infoworld.com"}, "topics": ["AI"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The corpus copied (curator writes land in an extra root of our own), imported once."""
    base = tmp_path_factory.mktemp("changes")
    roots = []
    for root in corpus_roots():
        roots.append(base / root.name)
        shutil.copytree(root, roots[-1])
    roots.append(base / "curated")
    roots[-1].mkdir()
    instance = base / "instance"
    app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0, "CONTENT_DIRS": [str(r) for r in roots]}, instance)
    sync(get_store(app), roots)
    token = CliRunner().invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    return {"app": app, "roots": roots, "admin": {"Authorization": f"Bearer {token}"}}


def last_modified(resp) -> datetime:
    return parsedate_to_datetime(resp.headers["Last-Modified"])


def revalidate(client, path: str, before) -> tuple[int, datetime]:
    """A reader that sends If-Modified-Since alone (no ETag): the status and the new Last-Modified.

    HTTP dates have one-second resolution: a change in the same second as the reader's last
    fetch shows from the next second on (never in the future, RFC 9110 §8.8.2.1), so the
    reader polls — a 304 that lasts beyond that second fails. Changes within one second run the
    stored time ahead of the clock; the header says now until the clock gets there, so the
    reader also polls while the header has not moved past ``before``'s."""
    deadline = time.monotonic() + 5
    while True:
        resp = client.get(path, headers={"If-Modified-Since": before.headers["Last-Modified"]})
        moved = resp.status_code != 304 and last_modified(resp) > last_modified(before)
        if moved or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    now = datetime.now(timezone.utc)
    assert last_modified(resp) <= now, "Last-Modified in the future"
    return resp.status_code, last_modified(resp)


def test_backdated_insert_edit_and_removal_each_answer_200_to_if_modified_since(site):
    client, store = site["app"].test_client(), get_store(site["app"])
    path = "/feeds/all.atom?limit=200"
    first = client.get(path)
    assert client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    untouched = store.feed_changes(["topics/azure"])["topics/azure"]

    created = client.post("/api/v1/articles", json=BACKDATED, headers=site["admin"])
    assert created.status_code == 201, created.json
    article_id = created.json["id"]
    status, after_insert = revalidate(client, path, first)
    assert status == 200 and after_insert > last_modified(first)
    inserted = client.get(path)
    feed = feedparser.parse(inserted.data)
    assert entry_id(article_id) in {e.id for e in feed.entries}
    assert feed.feed.updated_parsed and datetime(*feed.feed.updated_parsed[:6], tzinfo=timezone.utc) == after_insert
    assert store.feeds_of([article_id]) == {article_id: ["all", "providers/infoworld.com", "topics/ai"]}
    for ext in ("rss", "atom"):  # the excerpt arrives exactly as written (&, <tag>, a literal &amp;, quotes, emoji)
        shown = next(e for e in feedparser.parse(client.get(f"/feeds/all.{ext}?limit=200").data).entries
                     if e.id == entry_id(article_id))
        assert shown.summary_detail.type == "text/html" and html.unescape(shown.summary) == BACKDATED["excerpt"]
    item = next(i for i in client.get("/feeds/all.json?limit=200").json["items"] if i["id"] == entry_id(article_id))
    assert item["summary"] == BACKDATED["excerpt"] and item["author"] == item["authors"][0] == {
        "name": "InfoWorld", "url": "https://infoworld.com/"}
    assert store.feed_changes(["topics/azure"])["topics/azure"] == untouched  # not in that feed: not bumped

    edited = client.put(f"/api/v1/articles/{article_id}", json=BACKDATED | {"title": "Backdated, then edited"},
                        headers=site["admin"])
    assert edited.status_code == 200
    status, after_edit = revalidate(client, path, inserted)
    assert status == 200 and after_edit > after_insert
    entry = next(e for e in feedparser.parse(client.get(path).data).entries if e.id == entry_id(article_id))
    assert entry.title == "Backdated, then edited"
    # the entry's updated is when its content changed (the record has no updatedDateTime)
    assert after_insert <= datetime(*entry.updated_parsed[:6], tzinfo=timezone.utc) <= after_edit

    state = store.feed_changes(["all"])["all"]
    same = client.put(f"/api/v1/articles/{article_id}", json=BACKDATED | {"title": "Backdated, then edited"},
                      headers=site["admin"])
    assert same.status_code == 200
    assert store.feed_changes(["all"])["all"] == state  # saved again unchanged: nothing moves
    before_removal = client.get(path)
    assert before_removal.headers["Last-Modified"] == client.get(path).headers["Last-Modified"]

    assert client.delete(f"/api/v1/articles/{article_id}", headers=site["admin"]).status_code == 204
    status, after_removal = revalidate(client, path, before_removal)
    assert status == 200 and after_removal > after_edit
    assert entry_id(article_id) not in client.get(path).data.decode()
    assert store.feed_changes(["all"])["all"].version == state.version + 1


def test_unchanged_reimport_moves_nothing_and_renders_the_same_bytes(site):
    client, store = site["app"].test_client(), get_store(site["app"])
    before = {p: client.get(p).data for p in ("/feeds/all.rss", "/feeds/topics/ai.atom", "/feeds/all.json")}
    states = store.feed_changes(["all", "topics/ai", "providers/infoworld.com"])
    sync(store, site["roots"])
    assert store.feed_changes(["all", "topics/ai", "providers/infoworld.com"]) == states
    assert {p: client.get(p).data for p in before} == before


def test_an_empty_feed_is_dated_by_its_feed_not_1970(site):
    client, store = site["app"].test_client(), get_store(site["app"])
    # earlier tests changed "all" several times a second: its change time may be a second or two
    # ahead of the clock (never shown before its time), so let the clock reach it first
    deadline = time.monotonic() + 10
    while store.feed_changes(["all"])["all"].changed_at > datetime.now(timezone.utc) and time.monotonic() < deadline:
        time.sleep(0.2)
    resp = client.get("/feeds/all.atom?type=podcast")
    feed = feedparser.parse(resp.data)
    assert not feed.entries and feed.feed.title == "All articles (type podcast)"
    updated = datetime(*feed.feed.updated_parsed[:6], tzinfo=timezone.utc)
    assert updated == store.feed_changes(["all"])["all"].changed_at == last_modified(resp)


def test_feed_identities_agree_with_feed_refs(site):

    store = get_store(site["app"])
    some = store.recent("all", None, FeedQuery(limit=5))
    for row in some:
        for identity in store.feeds_of([row.id])[row.id]:
            assert FeedRef.parse(identity).identity == identity
            assert identity in store.feed_changes([identity])


def test_a_topic_rename_moves_its_feed_and_shows_the_new_name(site):
    """Runs last in this module: it renames a topic of the shared copy."""
    client, store = site["app"].test_client(), get_store(site["app"])
    before = store.feed_changes(["topics/ai"])["topics/ai"]
    topic_file = site["roots"][0] / "_data" / "topics" / "00-ai.yaml"
    topic_file.write_text(topic_file.read_text().replace("name: AI\n", "name: Artificial Intelligence\n"))
    sync(store, site["roots"])
    after = store.feed_changes(["topics/ai"])["topics/ai"]
    assert after.version == before.version + 1 and after.changed_at > before.changed_at
    feed = feedparser.parse(client.get("/feeds/topics/ai.atom").data)
    assert feed.feed.title == "Artificial Intelligence news"
    assert all("Artificial Intelligence" in {t.term for t in e.tags} for e in feed.entries)


def test_a_feed_rendered_during_a_burst_of_writes_is_not_kept_with_a_clock_date(site):
    """Writes within one second push a feed's stored time a second or more ahead of the clock
    (``feeds.store.changes``). A render made then must not be kept: it shows the clock, not the
    stored time, so once the clock has passed, its ``updated`` would disagree with
    ``Last-Modified`` and a fresh render (another process, a restart) would give other bytes."""
    client, store = site["app"].test_client(), get_store(site["app"])
    path = "/feeds/providers/infoworld.com.atom?limit=200"
    created = client.post("/api/v1/articles", json=BACKDATED | {"title": "Burst 0"}, headers=site["admin"])
    assert created.status_code == 201, created.json
    article_id = created.json["id"]
    for n in range(1, 30):  # until the stored time runs ahead of the clock
        assert client.put(f"/api/v1/articles/{article_id}", json=BACKDATED | {"title": f"Burst {n}"},
                          headers=site["admin"]).status_code == 200
        ahead = store.feed_changes(["providers/infoworld.com"])["providers/infoworld.com"].changed_at
        during = client.get(path)
        if ahead.timestamp() > time.time():
            break
    else:
        pytest.fail("thirty writes never ran the stored time ahead of the clock")
    while time.time() < ahead.timestamp() + 1.2:
        time.sleep(0.2)
    after = client.get(path)
    feed = feedparser.parse(after.data)
    assert last_modified(after) == ahead
    assert datetime(*feed.feed.updated_parsed[:6], tzinfo=timezone.utc) == ahead, "kept the render made during the burst"
    assert during.data != after.data
    client.delete(f"/api/v1/articles/{article_id}", headers=site["admin"])


def test_a_provider_rename_moves_every_feed_showing_its_articles(site):
    """The taxonomy's provider name is the author of each of its entries in all and topic feeds
    too, so renaming it changes those feeds' bytes: their Last-Modified must advance as well."""
    client, store = site["app"].test_client(), get_store(site["app"])
    org = next(r / "_data" / "organizations" / "zdnet.com.md" for r in site["roots"]
               if (r / "_data" / "organizations" / "zdnet.com.md").exists())
    paths = ["/feeds/topics/microsoft-ai.atom", "/feeds/all.atom?limit=200", "/feeds/providers/zdnet.com.atom"]
    ahead = max(s.changed_at for s in store.feed_changes(["all", "topics/microsoft-ai", "providers/zdnet.com"]).values())
    while time.time() < ahead.timestamp() + 1.2:  # earlier writes may have run a stored time ahead of the clock
        time.sleep(0.2)
    before = {p: client.get(p) for p in paths}
    assert all("<name>ZDNet</name>" in r.data.decode() for r in before.values())
    original = org.read_text(encoding="utf-8")
    org.write_text(original.replace("name: ZDNet\n", "name: ZDNet (renamed)\n"), encoding="utf-8")
    try:
        sync(store, site["roots"])
        for p, first in before.items():
            status, after = revalidate(client, p, first)
            assert "<name>ZDNet (renamed)</name>" in client.get(p).data.decode()
            assert status == 200 and after > last_modified(first), p
    finally:
        org.write_text(original, encoding="utf-8")
        sync(store, site["roots"])
