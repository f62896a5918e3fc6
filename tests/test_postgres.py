"""The same code path on a real PostgreSQL server: import, feeds, API, curator writes, re-sync."""
from __future__ import annotations

import json

import feedparser
import pytest

from feeds.importer import sync
from feeds.article import entry_id
from server import create_app, get_store
from server.cli import main as cli

from .conftest import copy_site, corpus_roots

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(cluster, tmp_path, request):
    url = cluster.create_db(f"t_{request.node.name.lower()[:40]}")
    instance = tmp_path / "instance"
    instance.mkdir()
    # config.toml, so that CLI commands on this instance use the same database
    (instance / "config.toml").write_text(f'database_url = "{url}"\napi_access = "public"\n')
    return create_app({"VERSION_TTL": 0}, instance)


def test_corpus_on_postgres_matches_sqlite(pg_app, tmp_path):
    roots = corpus_roots()
    pg_report = sync(get_store(pg_app), roots)
    sqlite_app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0}, tmp_path / "sqlite")
    lite_report = sync(get_store(sqlite_app), roots)
    assert get_store(pg_app).dialect == "postgresql"
    assert pg_report.summary() == lite_report.summary()
    assert get_store(pg_app).stats() == get_store(sqlite_app).stats()
    for path in ("/feeds/topics/ai.atom", "/feeds/all.rss?limit=200", "/feeds/providers/infoworld.com.json",
                 "/feeds/index.opml", "/api/news/ai/page/2/index.json"):
        pg = pg_app.test_client().get(path)
        lite = sqlite_app.test_client().get(path)
        assert pg.status_code == lite.status_code == 200
        if path.startswith("/feeds"):
            assert pg.data == lite.data, path  # byte-identical documents from either database
    pg_api = pg_app.test_client().get("/api/v1/articles/2022-07-18-open-source-isnt-working-for-ai").json
    lite_api = sqlite_app.test_client().get("/api/v1/articles/2022-07-18-open-source-isnt-working-for-ai").json
    assert [r["title"] for r in pg_api["related"]] == [r["title"] for r in lite_api["related"]]
    hit = pg_app.test_client().get("/api/v1/lookup?prefix=13b6628c").json["value"]
    assert [a["id"] for a in hit] == ["2022-07-18-open-source-isnt-working-for-ai"]


def test_resync_edits_and_curator_writes_on_postgres(pg_app, tmp_path):
    site = copy_site(tmp_path / "ai")
    store = get_store(pg_app)
    first = sync(store, [site])
    assert sync(store, [site]).unchanged == len(first.added)
    target = site / "_news" / "2022-07-18-open-source-isnt-working-for-ai.md"
    target.write_text(target.read_text().replace("heat: 89", "heat: 5"))
    assert sync(store, [site]).updated.sample == [target.stem]
    runner = pg_app.test_cli_runner()
    token = runner.invoke(cli, ["admin-token", "--instance", pg_app.instance_path]).output.strip()
    body = {"title": "Written to PostgreSQL", "publishedDateTime": "2031-01-01T00:00:00Z",
            "webUrl": "https://example.org/pg", "topics": ["AI"]}
    client = pg_app.test_client()
    resp = client.post("/api/v1/articles", json=body, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.json
    feed = feedparser.parse(client.get("/feeds/topics/ai.atom").data)
    assert feed.entries[0].id == entry_id(resp.json["id"])
    info = json.loads(runner.invoke(cli, ["clients", "add", "pg", "--server-url", "http://x", "--json",
                                          "--instance", pg_app.instance_path]).output)
    assert client.get("/api/v1/topics", headers={"Authorization": f"Bearer {info['token']}"}).status_code == 200


# Found in review: PostgreSQL text cannot hold NUL, so a %00 anywhere a value reaches a query
# answered 500 there (SQLite answered 404/200, and the in-suite fuzzer runs on SQLite only).
NUL_URLS = ["/api/v1/articles/%00", "/feeds/topics/%00.atom", "/feeds/providers/a%00.com.atom", "/feeds/all.atom?q=%00",
            "/api/v1/topics/ai/articles?q=a%00", "/api/v1/topics/%00/articles", "/api/news/%00/index.json",
            "/api/news/a%00/page/2/index.json", "/feeds/private/%00.atom", "/api/v1/lookup?url=https://x.example/%00"]


def test_nul_characters_in_urls_are_400_on_both_backends(pg_app, tmp_path):
    lite_app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0}, tmp_path / "lite")
    for app, backend in ((pg_app, "postgresql"), (lite_app, "sqlite")):
        assert get_store(app).dialect == backend
        client = app.test_client()
        for url in NUL_URLS:
            resp = client.get(url)
            assert resp.status_code == 400, (backend, url, resp.status_code, resp.data[:200])
            assert b"NUL" in resp.data, url
        assert client.get("/healthz").status_code == 200


def test_fuzzed_requests_never_get_5xx_on_postgres(cluster, tmp_path):
    # Found in review: the in-suite fuzz run used SQLite only, and PostgreSQL refuses values
    # SQLite takes (NUL in text); the same generator, a shorter run, on the other backend.
    from . import fuzz
    from .conftest import LiveServer

    target = fuzz.prepare_target(tmp_path, f'database_url = "{cluster.create_db("t_fuzz")}"\napi_access = "public"\n')
    server = LiveServer(target.instance)
    try:
        statuses = fuzz.run(server.port, 3000, seed=10, tokens=target.tokens, article_ids=target.article_ids)
        assert not {k: v for k, v in statuses.items() if isinstance(k, tuple)}
        assert statuses[200] > 100 and statuses[400] > 100 and statuses[404] > 100
    finally:
        server.stop()


def test_write_transactions_plan_for_the_tables_as_they_are_and_analyze_counts_rows(pg_app):
    """An import is one long transaction whose repeated statements (psycopg prepares them after
    5 runs) must not keep a generic plan costed while the tables were empty: write transactions
    plan every statement afresh, and ``analyze()`` gives the planner the imported row counts."""
    store = get_store(pg_app)
    with store.write() as tx:
        assert tx.conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
    with store._conn() as conn:  # SET LOCAL: reads outside a write keep the server's default
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
    report = sync(store, corpus_roots())
    store.analyze()
    with store._conn() as conn:
        planned = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'articles'").scalar()
    assert planned == store.stats()["articles"] == len(report.added)


def test_a_long_import_refreshes_statistics_inside_its_transaction(pg_app, monkeypatch):
    """Each time a write transaction has doubled the articles it put (from ANALYZE_FIRST), the
    article tables are analyzed inside it, so its later statements are planned for the rows it
    wrote (a dry run shows it: the data is rolled back, the ANALYZE counts are not)."""
    import feeds.store

    store = get_store(pg_app)

    def analyzed() -> int:
        with store._conn() as conn:
            conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            return conn.exec_driver_sql(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'articles'").scalar()

    before = analyzed()
    added = len(sync(store, corpus_roots(), dry_run=True).added)
    assert 100 < added < feeds.store.ANALYZE_FIRST and analyzed() == before  # too few to be worth it
    monkeypatch.setattr(feeds.store, "ANALYZE_FIRST", 100)
    assert len(sync(store, corpus_roots(), dry_run=True).added) == added
    assert analyzed() > before
    assert store.stats()["articles"] == 0  # rolled back



def test_spilled_noted_ids_are_read_back_through_the_index(pg_app):
    """A 1M first import notes every article; its spilled ids are read back in chunks, and each
    chunk must be a range scan of the temporary table's index, not a scan and sort of the whole
    table (PostgreSQL never analyzes a temporary table by itself: at 1M the settling took longer
    than the rest of the import). The chunks still give every id once, in order."""
    store = get_store(pg_app)
    for noted in (40000, 90000):
        ids = [f"{noted}-{i:016x}" for i in range(noted)]
        with store.write() as tx:
            tx.note_articles(ids[: noted // 2])
            tx.note_articles(ids)  # noted twice: duplicates in the spilled table
            chunks = tx._noted_chunks()
            read, scans = [], []
            for chunk in chunks:
                read += chunk
                scans.append(tx.conn.exec_driver_sql("SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables "
                                                     "WHERE relname = 'noted_articles'").one())
                if len(scans) == 2:  # the second chunk's read alone
                    assert (noted, scans[1].seq_scan - scans[0].seq_scan) == (noted, 0)
                    assert scans[1].idx_scan - scans[0].idx_scan == 1
        assert read == ids
