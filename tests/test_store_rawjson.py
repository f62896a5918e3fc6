"""Records reach the store as JSON text encoded in the parse workers (``feeds.store.RawJSON``):
stored once, not encoded twice, and read back as the same values on both backends."""
from __future__ import annotations

import sqlite3

import pytest

from feeds.importer import sync
from feeds.records import parse_article
from feeds.store import RawJSON, Store, dumps

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
