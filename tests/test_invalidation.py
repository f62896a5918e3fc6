"""Targeted render-cache invalidation (issue 11 part 3): a write drops only the cached documents
it changed, in every process (each app here has its own store connection and cache, as a
separate server process would), and whatever a warm cache serves after any sequence of curator
writes equals what an app with an empty cache renders."""
from __future__ import annotations

import json
import random
import sqlite3
import shutil
import time
from pathlib import Path

import pytest

from feeds.importer import sync
from server import create_app, fastpath, get_store
from server.cli import main as cli
from server.context import master_keys, render_cache
from server.signing import verify_object

from .test_golden import CONTENT

BASE = "https://feeds.example.net"
TOPICS = ["Robots", "Gardens", "Kites"]
URLS = [f"https://example.org/shared/{n}" for n in range(3)]  # few: writes make and break URL duplicates
PATHS = ["/", "/feeds/index.opml", "/feeds/providers.opml", "/api/v1/topics", "/api/v1/providers",
         *(f"/feeds/{feed}.{ext}" for feed in ("all", "topics/robots", "topics/gardens", "providers/example.org")
           for ext in ("atom", "rss", "json")),
         "/feeds/topics/robots.atom?min_quality=50", "/feeds/all.rss?type=video"]


def _config(extra: dict | None = None) -> dict:
    return {"API_ACCESS": "public", "VERSION_TTL": 0, "PUBLIC_BASE_URL": BASE, **(extra or {})}


@pytest.fixture
def database(request) -> str:
    """``database_url`` for the instance: SQLite (empty) unless a test asks for PostgreSQL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return request.getfixturevalue("cluster").create_db(f"t_{request.node.name.lower()[:40]}".replace("[", "_").rstrip("]"))


@pytest.fixture
def site(tmp_path: Path, database: str) -> dict:
    """An instance over a writable copy of the golden content with a second taxonomy topic; a
    writer app (its curator API) and a reader app with a warm cache, as two processes would be."""
    content = tmp_path / "site"
    shutil.copytree(CONTENT, content)
    (content / "_data" / "topics" / "01-gardens.yaml").write_text("taxonomy: topic\n_id: gardens\nname: Gardens\n")
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'content_dirs = ["{content}"]\ndatabase_url = "{database}"\n')
    writer = create_app(_config(), instance)
    sync(get_store(writer), [content])
    token = writer.test_cli_runner().invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    return {"instance": instance, "writer": writer, "reader": create_app(_config(), instance),
            "admin": {"Authorization": f"Bearer {token}"}}


def served(app, path: str) -> tuple[int, bytes, str | None, str | None]:
    """Status, body, ETag and Last-Modified of a GET. An API answer is signed at the second it is
    answered (never cached), so its ``secured`` values are verified and left out of the body."""
    resp = app.test_client().get(path)
    body = resp.get_data()
    if path.startswith("/api/"):
        body = json.dumps(_verified(resp.json, master_keys(app)), sort_keys=True).encode()
    return resp.status_code, body, resp.headers.get("ETag"), resp.headers.get("Last-Modified")


def _verified(value, keys: list[str]):
    """``value`` without its ``secured`` fields, each checked against ``keys`` first."""
    if isinstance(value, list):
        return [_verified(v, keys) for v in value]
    if isinstance(value, dict):
        if "secured" in value:
            assert verify_object(value, keys), value
        return {k: _verified(v, keys) for k, v in value.items() if k != "secured"}
    return value


def cached_answers(app) -> int:
    """Answers given from the render cache: by the views, and replayed by the fast path."""
    return render_cache(app).hits + fastpath.of(app).hits


def wait_for_the_clock(app) -> None:
    """Writes in one second date their feeds a second apart, ahead of the clock (``changes``);
    such renders show the clock and are never cached, so compare only once the clock caught up."""
    states = get_store(app).feed_changes(["all", "topics/robots", "topics/gardens", "topics/kites",
                                          "providers/example.org"])
    ahead = max((s.changed_at.timestamp() for s in states.values()), default=0)
    while time.time() < ahead + 1:
        time.sleep(0.05)


def article(rng: random.Random, n: int) -> dict:
    return {"title": f"Article {n} {rng.random():.6f}", "publishedDateTime": f"2031-01-{rng.randint(1, 28):02d}T10:00:00Z",
            "webUrl": rng.choice(URLS), "quality": rng.choice([10, 60, 90]), "type": rng.choice(["article", "video"]),
            "provider": {"name": "Example", "domain": "example.org"},
            "topics": rng.sample(TOPICS, rng.randint(1, 2)), "published": rng.random() > 0.15}


def curator_write(site: dict, rng: random.Random, ids: list[str], n: int) -> str:
    """One random curator write through the writer app's API: create, edit, move between
    topics, change the URL (a duplicate made or undone), unpublish, or delete."""
    client, admin = site["writer"].test_client(), site["admin"]
    op = rng.choice(["create", "create", "edit", "move", "url", "delete"]) if ids else "create"
    if op == "create":
        resp = client.post("/api/v1/articles", json=article(rng, n), headers=admin)
        assert resp.status_code == 201, resp.get_data()
        ids.append(resp.json["id"])
        return op
    target = rng.choice(ids)
    if op == "delete":
        assert client.delete(f"/api/v1/articles/{target}", headers=admin).status_code == 204
        ids.remove(target)
        return op
    fields = article(rng, n)
    current = client.get(f"/api/v1/articles/{target}").json or {}
    if op == "move":  # same entry, other topics
        fields = {**fields, "title": current.get("title", fields["title"])}
    resp = client.put(f"/api/v1/articles/{target}", json=fields, headers=admin)
    assert resp.status_code == 200, resp.get_data()
    return op


@pytest.mark.parametrize("database,seed", [("sqlite", 1), ("sqlite", 2),
                                           pytest.param("postgres", 3, marks=pytest.mark.postgres)], indirect=["database"])
def test_served_documents_equal_fresh_renders_after_random_writes(site, seed):
    rng = random.Random(seed)
    reader, ids = site["reader"], []
    for path in PATHS:  # warm: everything cached before the first write
        served(reader, path)
    for n in range(12):
        op = curator_write(site, rng, ids, n)
        wait_for_the_clock(reader)
        fresh = create_app(_config(), site["instance"])  # an empty cache, as a new process
        for path in PATHS:
            assert served(reader, path) == served(fresh, path), (seed, n, op, path)
        get_store(fresh).close()
    assert cached_answers(reader) > 0  # the comparison did exercise cached answers


def test_a_write_in_one_topic_keeps_other_topics_warm(site):
    reader, client, admin = site["reader"], site["writer"].test_client(), site["admin"]
    robots = client.post("/api/v1/articles", headers=admin, json={
        "title": "Robot news", "publishedDateTime": "2031-01-01T00:00:00Z", "webUrl": "https://example.org/robot-news",
        "topics": ["Robots"], "provider": {"name": "Other", "domain": "other.example"}}).json["id"]
    client.post("/api/v1/articles", headers=admin, json={
        "title": "Garden news", "publishedDateTime": "2031-01-01T00:00:00Z", "webUrl": "https://example.org/garden-news",
        "topics": ["Gardens"], "provider": {"name": "Another", "domain": "another.example"}})
    wait_for_the_clock(reader)
    cache = render_cache(reader)
    gardens = served(reader, "/feeds/topics/gardens.atom")
    served(reader, "/feeds/topics/robots.atom")
    served(reader, "/feeds/index.opml")
    served(reader, "/")
    assert client.put(f"/api/v1/articles/{robots}", headers=admin, json={
        "title": "Robot news, edited", "publishedDateTime": "2031-01-01T00:00:00Z",
        "webUrl": "https://example.org/robot-news", "topics": ["Robots"],
        "provider": {"name": "Other", "domain": "other.example"}}).status_code == 200
    hits, misses = cached_answers(reader), cache.misses
    assert served(reader, "/feeds/topics/gardens.atom") == gardens
    assert (cached_answers(reader), cache.misses) == (hits + 1, misses)  # still warm
    assert b"Robot news, edited" in served(reader, "/feeds/topics/robots.atom")[1]
    assert cache.misses == misses + 1
    served(reader, "/")  # an edit moves no article in or out of a feed: the index stays
    assert cache.misses == misses + 1
    served(reader, "/feeds/index.opml")  # dated by its newest topic feed: rendered again
    assert cache.misses == misses + 2


def test_the_fast_path_forgets_only_the_changed_feeds(site):
    reader, client, admin = site["reader"], site["writer"].test_client(), site["admin"]
    fast = fastpath.of(reader)
    assert fast is not None
    for path in ("/feeds/topics/gardens.rss", "/feeds/topics/robots.rss?min_quality=0"):
        served(reader, path)
        served(reader, path)
    hits = fast.hits
    assert client.post("/api/v1/articles", headers=admin, json={
        "title": "Robots only", "publishedDateTime": "2031-01-01T00:00:00Z", "webUrl": "https://example.org/robots-only", "quality": 90,
        "topics": ["Robots"]}).status_code == 201
    served(reader, "/feeds/topics/gardens.rss")
    assert fast.hits == hits + 1
    filtered = served(reader, "/feeds/topics/robots.rss?min_quality=0")  # a filtered URL goes with its feed
    assert fast.hits == hits + 1 and b"Robots only" in filtered[1]


def test_a_taxonomy_edit_drops_everything(site):
    reader = site["reader"]
    for path in PATHS:
        served(reader, path)
    cache = render_cache(reader)
    assert len(cache) > 0
    with get_store(site["writer"]).write() as tx:
        topics = [t for t in tx.counted_topics()]
        tx.replace_taxonomy([type(t)(t.slug, t.name + " renamed", t.data) for t in topics], [])
    cache.refresh()
    assert len(cache) == 0


@pytest.mark.parametrize("gap", ["pruned", "restored"])
def test_a_process_that_missed_changes_drops_everything(site, gap):
    reader, client, admin = site["reader"], site["writer"].test_client(), site["admin"]
    served(reader, "/feeds/topics/gardens.atom")
    cache = render_cache(reader)
    with sqlite3.connect(site["instance"] / "topicfeed.db") as db:
        if gap == "pruned":  # the rows after the reader's last one are gone (it fell LOG_KEEP behind)
            db.execute("INSERT INTO change_log (seq, version, scope) SELECT MAX(seq) + 2, 'x', '[]' FROM change_log")
            db.execute("DELETE FROM change_log WHERE seq < (SELECT MAX(seq) FROM change_log)")
        else:  # an older index came back: the log starts again
            db.execute("DELETE FROM change_log")
    assert client.post("/api/v1/articles", headers=admin, json={
        "title": "After the gap", "publishedDateTime": "2031-01-01T00:00:00Z", "webUrl": "https://example.org/gap",
        "topics": ["Robots"]}).status_code == 201
    cache.refresh()
    assert len(cache) == 0
