"""Values at the edge of the record rules import on both backends; one past the edge is reported
on both (PostgreSQL's INTEGER is 32-bit and its VARCHARs are enforced, SQLite's are not)."""
from __future__ import annotations

import pytest

from feeds.importer import sync
from server import create_app, get_store

from .conftest import free_port
from .postgres import Cluster, pg_bin

LONG_NAME = "n" * 200  # MAX_NAME_LENGTH
EDGE_RECORD = f"""---
title: "At every limit"
publishedDateTime: 2024-06-01T00:00:00Z
webUrl: "https://example.org/limits"
quality: 2147483647
heat: -2147483648
type: "{'t' * 64}"
provider: {{name: P, domain: "{('d' * 60 + '.') * 4}org"}}
topics: ["{LONG_NAME}", "{'人' * 200}", "C#"]
extra: 9007199254740991
---
"""
PAST = {
    "quality": EDGE_RECORD.replace("quality: 2147483647", "quality: 2147483648"),
    "heat": EDGE_RECORD.replace("heat: -2147483648", "heat: -2147483649"),
    "type": EDGE_RECORD.replace("t" * 64, "t" * 65),
    "topics": EDGE_RECORD.replace(LONG_NAME, LONG_NAME + "n"),
    "extra": EDGE_RECORD.replace("9007199254740991", "9007199254740992"),
}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield None
        return
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries not found (.ci/run installs Debian's postgresql)")
    cluster = Cluster(free_port())
    yield cluster.create_db("limits")
    cluster.stop()


def test_edge_values_import_and_one_past_is_reported(database_url, tmp_path):
    root = tmp_path / "content"
    (root / "_news").mkdir(parents=True)
    (root / "_news" / "2024-06-01-edge.md").write_text(EDGE_RECORD, encoding="utf-8")
    for n, (field, text) in enumerate(PAST.items(), 2):
        (root / "_news" / f"2024-06-0{n}-past-{field}.md").write_text(
            text.replace("/limits", f"/past-{field}"), encoding="utf-8")
    config = {"API_ACCESS": "public", "VERSION_TTL": 0} | ({"DATABASE_URL": database_url} if database_url else {})
    app = create_app(config, tmp_path / "instance")
    store = get_store(app)
    report = sync(store, [root])
    assert report.added.sample == ["2024-06-01-edge"]
    reasons = {e.path.rsplit("past-", 1)[1].removesuffix(".md"): str(e) for e in report.skipped}
    assert set(reasons) == set(PAST)
    for field, message in reasons.items():
        assert f"field '{field}'" in message and ".md:" in message, message
    edge = app.test_client().get("/api/v1/articles/2024-06-01-edge").json
    assert (edge["quality"], edge["heat"]) == (2147483647, -2147483648)
    assert len(edge["topics"]) == 3 and all(len(t["slug"]) <= 255 for t in edge["topics"])
    store.close()
