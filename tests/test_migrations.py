"""Schema migrations: an index written by topicfeed as it was before migrations (commit
1792073, rebuilt from git history) is upgraded in place, keeps its paired clients and
serves the same feeds; SQLite and PostgreSQL; concurrent starts; newer and older indexes."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from feeds.demo import write_demo_content
from feeds.store import SchemaError, Store, index_revision, migrate
from feeds.store.schema import metadata


REPO = Path(__file__).resolve().parents[1]
OLD_COMMIT = "1792073"  # main before schema migrations: meta.schema = "2", no alembic_version

# Prints every feed of an instance as {path: [status, body]}; runs unchanged on old and new code.
FEEDS_SCRIPT = """
import json, sys
from pathlib import Path
from server import create_app
app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0}, Path(sys.argv[1]))
c = app.test_client()
topics = [t["slug"] for t in c.get("/api/v1/topics").json["value"]]
providers = [p["domain"] for p in c.get("/api/v1/providers").json["value"]]
paths = (["/feeds/all.atom?limit=200", "/feeds/all.json?limit=200", "/feeds/index.opml", "/feeds/all.rss?q=data&min_quality=40"]
         + [f"/feeds/topics/{s}.rss" for s in topics] + [f"/feeds/providers/{d}.atom" for d in providers[:5]])
out = {p: [r.status_code, r.get_data(as_text=True)] for p in paths for r in [c.get(p)]}
print(json.dumps(out))
"""


URN = re.compile(r"urn:uuid:[0-9a-f-]{36}")  # feed and entry ids, in document order


def run(code: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m server ARGS`` (or a script with ``-c``) with ``code`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run([sys.executable, *args], cwd=code, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed with {code}:\n{proc.stderr}")
    return proc


def feeds(code: Path, instance: Path) -> dict[str, list]:
    return json.loads(run(code, "-c", FEEDS_SCRIPT, str(instance)).stdout)


@pytest.fixture(scope="module")
def old_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source tree of OLD_COMMIT (git archive: no worktree left behind in the repository)."""
    dest = tmp_path_factory.mktemp("old-code")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", OLD_COMMIT], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"commit {OLD_COMMIT} not in this clone's history: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("content") / "site"
    write_demo_content(path, 150, seed=5)
    return path


def make_old_index(old_code: Path, content: Path, instance: Path, database_url: str | None = None) -> dict:
    """Import ``content`` and pair a client with the old code; returns the client (id, token)."""
    instance.mkdir(parents=True)
    if database_url:
        (instance / "config.toml").write_text(f'database_url = "{database_url}"\n')
    run(old_code, "-m", "server", "import", "--instance", str(instance), str(content))
    return json.loads(run(old_code, "-m", "server", "clients", "add", "old-extension", "--server-url", "http://x",
                          "--json", "--instance", str(instance)).stdout)


def assert_upgraded_keeps_clients_and_feeds(old_code: Path, instance: Path, client: dict, before: dict) -> None:
    result = run(REPO, "-m", "server", "upgrade", "--instance", str(instance))
    assert result.stdout.strip() == f"upgraded from {migrate.BASELINE} to {migrate.HEAD}"
    # The same feeds with the same entries (this version renders more per entry: issue 10) …
    after = feeds(REPO, instance)
    assert {p: (status, URN.findall(doc)) for p, (status, doc) in after.items()} == \
        {p: (status, URN.findall(doc)) for p, (status, doc) in before.items()}
    listed = run(REPO, "-m", "server", "clients", "list", "--instance", str(instance)).stdout
    assert listed.startswith(f"{client['id']}\told-extension\t") and "active" in listed
    check = ("import sys; from pathlib import Path; from server import create_app; "
             "c = create_app(None, Path(sys.argv[1])).test_client(); "
             "print(c.get('/api/v1/topics', headers={'Authorization': 'Bearer ' + sys.argv[2]}).status_code, "
             "c.get('/api/v1/topics').status_code)")
    assert run(REPO, "-c", check, str(instance), client["token"]).stdout.split() == ["200", "401"]  # paired still works


def test_old_sqlite_index_is_upgraded_keeps_clients_and_feeds(old_code, content, tmp_path):
    instance = tmp_path / "instance"
    client = make_old_index(old_code, content, instance)
    before = feeds(old_code, instance)
    assert len(before) > 8 and all(status == 200 for status, _ in before.values())
    assert_upgraded_keeps_clients_and_feeds(old_code, instance, client, before)
    # an index at the head is left alone
    assert run(REPO, "-m", "server", "upgrade", "--instance", str(instance)).stdout.strip() == f"already at revision {migrate.HEAD}"
    # the documented way back: downgrade with the new code, then the old code serves it again
    down = run(REPO, "-m", "server", "downgrade", migrate.BASELINE, "--instance", str(instance))
    assert down.stdout.strip() == f"downgraded from {migrate.HEAD} to {migrate.BASELINE}"
    assert feeds(old_code, instance) == before


def test_old_code_refuses_an_upgraded_index(old_code, content, tmp_path):
    """meta.schema moves on, so a binary from before migrations does not misread a new index."""
    instance = tmp_path / "instance"
    make_old_index(old_code, content, instance)
    run(REPO, "-m", "server", "upgrade", "--instance", str(instance))
    proc = run(old_code, "-m", "server", "clients", "list", "--instance", str(instance), check=False)
    assert proc.returncode != 0 and "has schema 3, this topicfeed needs 2" in proc.stderr


def test_concurrent_starts_migrate_once(old_code, content, tmp_path):
    instance = tmp_path / "instance"
    make_old_index(old_code, content, instance)
    url = f"sqlite:///{instance / 'topicfeed.db'}"
    script = ("import sys; from feeds.store import Store, index_revision; s = Store(sys.argv[1]); "
              "print(index_revision(sys.argv[1])[0], s.stats()['articles'])")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", script, url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {f"{migrate.HEAD} 150"}
    with sqlite3.connect(instance / "topicfeed.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.HEAD,)]


def test_newer_revision_is_refused_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'index.db'}"
    Store(url).close()
    with sqlite3.connect(tmp_path / "index.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'f00dfeed'")
    with pytest.raises(SchemaError, match="schema revision f00dfeed, which this topicfeed does not know"):
        Store(url)
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'database_url = "{url}"\n')
    run(REPO, "-m", "server", "init", "--instance", str(instance))
    proc = run(REPO, "-m", "server", "clients", "list", "--instance", str(instance), check=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "f00dfeed" in proc.stderr


def test_auto_upgrade_off_refuses_until_upgraded(old_code, content, tmp_path):
    instance = tmp_path / "instance"
    make_old_index(old_code, content, instance)
    url = f"sqlite:///{instance / 'topicfeed.db'}"
    with pytest.raises(SchemaError, match="run `topicfeed upgrade`"):
        Store(url, auto_upgrade=False)
    assert run(REPO, "-m", "server", "upgrade", "--show", "--instance", str(instance)).stdout.strip() == (
        f"index at revision {migrate.BASELINE}; this topicfeed's is {migrate.HEAD}")
    run(REPO, "-m", "server", "upgrade", "--instance", str(instance))
    Store(url, auto_upgrade=False).close()  # no longer refused
    assert index_revision(url) == (migrate.HEAD, migrate.HEAD)


def test_unknown_legacy_schema_says_what_to_do(tmp_path):
    with sqlite3.connect(tmp_path / "index.db") as db:
        db.execute("CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
    with pytest.raises(SchemaError, match="has schema 1, older than any this topicfeed can upgrade"):
        Store(f"sqlite:///{tmp_path / 'index.db'}")


def schema_differences(url: str) -> list:
    """What autogenerate would change to make the migrated database match ``schema.py``."""
    Store(url).close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    finally:
        engine.dispose()
    if url.startswith("sqlite"):  # SQLite has no JSON type: SQLAlchemy's JSON is TEXT there
        diffs = [d for d in diffs if not (isinstance(d, list) and d[0][0] == "modify_type" and str(d[0][5]) == "TEXT"
                                          and str(d[0][6]) == "JSON")]
    return diffs


def test_migrations_build_exactly_the_declared_schema_on_sqlite(tmp_path):
    assert migrate.HEAD == migrate.scripts().get_current_head()
    assert schema_differences(f"sqlite:///{tmp_path / 'fresh.db'}") == []


def test_a_start_at_the_head_does_not_load_alembic(tmp_path):
    """Alembic costs every process ~11 MB; only a migration needs it."""
    url = f"sqlite:///{tmp_path / 'index.db'}"
    Store(url).close()
    script = "import sys; from feeds.store import Store; Store(sys.argv[1]); print(sorted(m for m in sys.modules if m.startswith('alembic')))"
    assert run(REPO, "-c", script, url).stdout.strip() == "[]"


@pytest.mark.postgres
def test_old_postgres_index_is_upgraded_keeps_clients_and_feeds(cluster, old_code, content, tmp_path):
    url = cluster.create_db("t_migrate_old")
    instance = tmp_path / "instance"
    client = make_old_index(old_code, content, instance, url)
    before = feeds(old_code, instance)
    sqlite_instance = tmp_path / "sqlite"
    make_old_index(old_code, content, sqlite_instance)
    assert feeds(old_code, sqlite_instance) == before  # the baseline: both databases agree
    assert_upgraded_keeps_clients_and_feeds(old_code, instance, client, before)
    assert schema_differences(url) == []  # the JSON columns are json now, as declared
    run(REPO, "-m", "server", "downgrade", migrate.BASELINE, "--instance", str(instance))
    assert feeds(old_code, instance) == before


@pytest.mark.postgres
def test_concurrent_starts_migrate_once_on_postgres(cluster, tmp_path):
    url = cluster.create_db("t_migrate_race")
    script = "import sys; from feeds.store import Store, index_revision; Store(sys.argv[1]); print(index_revision(sys.argv[1])[0])"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", script, url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {migrate.HEAD}
    assert schema_differences(url) == []


def test_upgrade_recomputes_lookup_hashes_the_uts46_way(old_code, tmp_path):
    """The old code mapped faß.de to fass.de (IDNA 2003); browsers map it to xn--fa-hia.de."""
    site = tmp_path / "site"
    (site / "_news").mkdir(parents=True)
    (site / "_news" / "2024-01-02-strasse.md").write_text(
        "---\ntitle: Straße\nwebUrl: https://faß.de/news/1\npublishedDateTime: 2024-01-02T10:00:00Z\n---\n",
        encoding="utf-8")
    instance = tmp_path / "instance"
    make_old_index(old_code, site, instance)
    lookup = ("import sys; from pathlib import Path; from server import create_app; "
              "c = create_app({'API_ACCESS': 'public'}, Path(sys.argv[1])).test_client(); "
              "print(len(c.get('/api/v1/lookup', query_string={'url': 'https://faß.de/news/1'}).json['value']))")
    run(REPO, "-m", "server", "upgrade", "--instance", str(instance))
    assert run(REPO, "-c", lookup, str(instance)).stdout.split() == ["1"]
    # the next import re-reads every file under the new rules (the upgrade marked them changed)
    again = run(REPO, "-m", "server", "import", "--instance", str(instance), str(site)).stdout
    assert "updated 1, unchanged 0" in again
