"""Records reach the store as JSON text encoded in the parse workers (``feeds.store.RawJSON``):
stored once, not encoded twice, and read back as the same values on both backends."""
from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.importer import sync
from feeds.records import parse_article
from feeds.store import RawJSON, Store, dumps, record_json

from .conftest import free_port
from .postgres import Cluster, pg_bin

RECORD = """---
title: "Zürich « quotes » and \\"escapes\\" 人"
publishedDateTime: 2024-06-01T00:00:00Z
webUrl: https://example.org/a?b=1
provider: {name: P, domain: example.org}
topics: [AI, "C#"]
images: [{url: "https://example.org/i.png", width: 10}]
nested: {list: [1, true, null, "x"], empty: {}}
---
Body text.
"""


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('raw')}/r.db"
        return
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries not found (.ci/run installs Debian's postgresql)")
    cluster = Cluster(free_port())
    yield cluster.create_db("rawjson")
    cluster.stop()


def test_dumps_keeps_raw_json_and_encodes_everything_else():
    raw = RawJSON('{"a":1}')
    assert dumps(raw) is raw
    assert dumps('{"a":1}') == '"{\\"a\\":1}"'  # a plain string is a JSON string value
    assert dumps({"b": [1], "a": "é"}) == '{"a":"é","b":[1]}'


def test_an_imported_record_is_stored_once_encoded(database_url, tmp_path):
    news = tmp_path / "content" / "_news"
    news.mkdir(parents=True)
    (news / "2024-06-01-a.md").write_text(RECORD, encoding="utf-8")
    expected = parse_article(RECORD.encode(), str(news / "2024-06-01-a.md"), "2024-06-01-a").record
    store = Store(database_url)
    try:
        sync(store, [tmp_path / "content"])
        assert store.article("2024-06-01-a").record == expected
        if database_url.startswith("sqlite"):
            # SQLite keeps the column's text: the canonical form, not a JSON string holding it
            with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
                stored = db.execute("SELECT record FROM articles WHERE id = '2024-06-01-a'").fetchone()[0]
            assert stored == dumps(expected)
    finally:
        store.close()


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.sampled_from(["\ud800", "\x7f", "\u2028", "\x00"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=5), st.integers(0, 3)), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=600, deadline=None)
@given(value=JSON_VALUES)
def test_record_json_writes_what_dumps_writes(value):
    # orjson for records (no floats); what it refuses (huge integers, lone surrogates, integer keys) goes through json
    def outcome(encode):
        try:
            return encode(value)
        except TypeError as exc:  # json too cannot sort text and integer keys together
            return ("TypeError", str(exc))

    assert outcome(record_json) == outcome(dumps)


def test_record_json_of_every_corpus_record_is_dumps():
    from .conftest import corpus_roots

    paths = [p for root in corpus_roots() for p in sorted((root / "_news").glob("*.md"))]
    assert len(paths) >= 50
    for path in paths:
        record = parse_article(path.read_bytes(), str(path), path.stem).record
        assert record_json(record) == dumps(record), path
        assert record_json([record, [["ai", "AI"]], None]) == dumps([record, [["ai", "AI"]], None])
