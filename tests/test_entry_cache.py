"""The entry cache (``feeds/entrycache.py``): a feed document rendered with entries kept from
earlier renders is byte for byte what a process without the cache renders, after curator
writes, an import that changed records, and taxonomy edits (topic and provider names, topics
added and removed); and it stays within its byte bound."""
from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.entrycache import EntryCache
from feeds.importer import sync
from feeds.render import JSON_OPTIONS
from server import create_app, get_store
from server.context import entry_cache
from server.httpcache import RenderCache

from .test_golden import CONTENT
from .test_invalidation import _config, curator_write, database, site, wait_for_the_clock  # noqa: F401 (fixtures)

FEEDS = [f"/feeds/{feed}.{ext}" for feed in ("all", "topics/robots", "topics/gardens", "topics/kites",
                                            "providers/example.org") for ext in ("atom", "rss", "json")]
FEEDS += ["/feeds/topics/robots.atom?min_quality=50", "/feeds/all.json?type=video", "/feeds/all.rss?limit=3"]


def cold(app):
    """``app`` with a render cache that keeps nothing: every feed request renders the document
    (from kept entries where the entry cache has them), as a cache miss does."""
    app.extensions["topicfeed.cache"] = RenderCache(get_store(app), 0, 0)
    return app


def documents(app) -> dict[str, tuple[int, bytes]]:
    client = app.test_client()
    return {path: (r.status_code, r.get_data()) for path in FEEDS for r in [client.get(path)]}


def without_entry_cache(instance: Path) -> dict[str, tuple[int, bytes]]:
    """What a process with no entry cache renders (``entry_cache_mb = 0``)."""
    app = create_app(_config({"ENTRY_CACHE_MB": 0}), instance)
    assert entry_cache(app) is None
    try:
        return documents(app)
    finally:
        get_store(app).close()


@pytest.mark.parametrize("seed", [1, 2])
def test_kept_entries_render_what_no_cache_renders_after_random_writes(site, seed):
    rng = random.Random(seed)
    reader, ids = cold(site["reader"]), []
    documents(reader)  # every entry of every feed kept, in every format
    for n in range(10):
        curator_write(site, rng, ids, n)
        wait_for_the_clock(reader)
        hits = entry_cache(reader).hits
        assert documents(reader) == without_entry_cache(site["instance"]), (seed, n)
        assert entry_cache(reader).hits > hits  # the unchanged entries were reused


def test_an_import_of_changed_records_shows_the_new_entries(site):
    reader = cold(site["reader"])
    before = documents(reader)
    content = site["instance"].parent / "site"
    record = next(p for p in sorted((content / "_news").glob("*.md")) if "title:" in p.read_text())
    text = record.read_text()
    record.write_text(text.replace("title:", "title: Reimported", 1))
    sync(get_store(site["writer"]), [content])
    wait_for_the_clock(reader)
    after = documents(reader)
    assert after == without_entry_cache(site["instance"])
    assert after != before and any(b"Reimported" in body for _, body in after.values())


@pytest.mark.parametrize("edit", ["rename topic", "remove topic", "add topic", "rename provider"])
def test_a_taxonomy_edit_shows_in_every_kept_entry(site, edit):
    reader = cold(site["reader"])
    documents(reader)
    with get_store(site["writer"]).write() as tx:
        topics, providers = list(tx.counted_topics()), list(tx.counted_providers())
        if edit == "rename topic":
            topics = [type(t)(t.slug, t.name + " Renamed", t.data) for t in topics]
        elif edit == "remove topic":  # its articles show the slug as the category
            topics = [t for t in topics if t.slug != "robots"]
        elif edit == "add topic":  # articles tagged with a slug the taxonomy lacked show its name now
            gone = [t for t in topics if t.slug == "robots"]
            topics = [t for t in topics if t.slug != "robots"]
            tx.replace_taxonomy(topics, providers)
            topics = topics + [type(gone[0])("robots", "Robot World", gone[0].data)]
        else:
            providers = [type(p)(p.domain, p.name + " Renamed", p.data) for p in providers]
        tx.replace_taxonomy(topics, providers)
    wait_for_the_clock(reader)
    after = documents(reader)
    assert after == without_entry_cache(site["instance"])
    marker = {"rename topic": b" Renamed", "remove topic": b"robots", "add topic": b"Robot World",
              "rename provider": b" Renamed"}[edit]
    assert marker in after["/feeds/all.atom"][1] and marker in after["/feeds/all.json"][1]


def test_threads_rendering_the_same_kept_entries_get_whole_documents(site):
    """Kept Atom/RSS elements are lent to one render at a time: renders running at once never
    take an element out of each other's document."""
    reader = cold(site["reader"])
    expected = documents(reader)

    def render_all(_: int) -> dict[str, tuple[int, bytes]]:
        return documents(reader)

    with ThreadPoolExecutor(8) as pool:
        for got in pool.map(render_all, range(16)):
            assert got == expected
    assert entry_cache(reader).hits > 16 * len(FEEDS)


def test_kept_entries_stay_within_the_byte_bound():
    cache = EntryCache(10_000)
    for n in range(100):
        cache.put(("a", n), object(), 1000)
        assert cache.size <= 10_000
    assert len(cache) == 10_000 // (1000 + EntryCache.ENTRY_OVERHEAD)
    assert cache.get(("a", 0)) is None and cache.get(("a", 99)) is not None  # least recently used went first
    cache.get(("a", 94))
    cache.put(("b", 0), object(), 1000)
    assert cache.get(("a", 94)) is not None and cache.get(("a", 95)) is None
    cache.put(("huge", 0), object(), 20_000)  # larger than the bound: not kept, nothing evicted for it
    assert cache.get(("huge", 0)) is None and len(cache) == 10_000 // (1000 + EntryCache.ENTRY_OVERHEAD)
    nothing = EntryCache(0)
    nothing.put("k", object(), 1)
    assert nothing.get("k") is None and nothing.size == 0


def test_json_feeds_are_the_standard_librarys_indented_sorted_json(tmp_path):
    """orjson writes what ``json.dumps(..., ensure_ascii=False, indent=2, sort_keys=True)``
    wrote before: every JSON feed of the golden content, parsed and dumped by the stdlib."""
    app = create_app({"API_ACCESS": "public"}, tmp_path)
    sync(get_store(app), [CONTENT])
    client = app.test_client()
    for feed in ("all", "topics/robots", "providers/example.org"):
        body = client.get(f"/feeds/{feed}.json").get_data()
        assert body == json.dumps(json.loads(body), ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=12))
def test_orjson_options_match_the_standard_library(value):
    try:
        expected = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode()
    except UnicodeEncodeError:  # lone surrogates: not in any record (YAML files are UTF-8)
        return
    assert orjson.dumps(value, option=JSON_OPTIONS) == expected
