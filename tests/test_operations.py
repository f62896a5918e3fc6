"""Running an instance: backup and restore, /metrics (also across worker processes), /healthz's
import log, JSON log lines, the import lock and `import --watch`."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feeds.demo import write_demo_content
from feeds.importjob import import_lock, run_import
from feeds.store import Store
from feeds.store.imports import ImportStatus
from server import create_app, get_store
from server.cli import main
from server.signing import verify_object

from .conftest import REPO, LiveServer

NEW = {"title": "Kept by the curator", "excerpt": "Written through the API.", "publishedDateTime": "2025-01-02T03:04:05Z",
       "webUrl": "https://www.infoworld.com/article/9999998/kept-by-the-curator.html", "type": "article",
       "provider": {"name": "InfoWorld", "domain": "infoworld.com"}, "topics": ["AI"]}
FEEDS = ["/feeds/all.atom?limit=200", "/feeds/all.json", "/feeds/topics/ai.rss", "/feeds/index.opml", "/"]


def cli(instance: Path, *args: str, check: bool = True) -> Result:
    """``topicfeed --instance INSTANCE ARGS`` in this process (tests that need another process
    start ``python -m server`` themselves)."""
    result = CliRunner().invoke(main, ["--instance", str(instance), *args])
    if check:
        assert result.exit_code == 0, result.output
    return result


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> object:
    """Poll ``condition`` until it is truthy; generous timeout (the machine is shared)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def site(tmp_path: Path) -> dict:
    """An instance whose content_dirs is a demo tree, imported through the CLI."""
    root, instance = tmp_path / "content", tmp_path / "instance"
    write_demo_content(root, 60, seed=3)
    instance.mkdir(mode=0o700)
    (instance / "config.toml").write_text(f'content_dirs = ["{root}"]\napi_access = "paired"\n')
    app = create_app({}, instance)
    run_import(get_store(app), [root], instance)
    get_store(app).close()
    return {"root": root, "instance": instance}


def test_backup_wipe_restore_gives_back_clients_feeds_and_curated_articles(site, tmp_path):
    instance, root = site["instance"], site["root"]
    paired = json.loads(cli(instance, "clients", "add", "laptop", "--server-url", "http://x.test", "--json").stdout)
    admin = cli(instance, "admin-token").stdout.strip()
    app = create_app({"VERSION_TTL": 0}, instance)
    created = app.test_client().post("/api/v1/articles", json=NEW, headers={"Authorization": f"Bearer {admin}"})
    assert created.status_code == 201, created.json
    curated = root / "_news" / f"{created.json['id']}.md"
    before = {p: app.test_client().get(p).data for p in FEEDS}
    get_store(app).close()

    archive = tmp_path / "backup.tar.gz"
    out = cli(instance, "backup", str(archive)).stdout
    assert "the SQLite index, " in out and "curator record file(s)" in out
    assert archive.stat().st_mode & 0o777 == 0o600  # it holds the master keys
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"topicfeed-backup.json", "config.toml", "keys.json", "topicfeed.db", f"records/{curated.name}"} <= names

    shutil.rmtree(instance)
    curated.unlink()
    out = cli(instance, "restore", str(archive)).stdout
    assert "restored" in out and curated.exists()
    assert (instance / "keys.json").stat().st_mode & 0o777 == 0o600
    refused = cli(instance, "restore", str(archive), check=False)
    assert refused.exit_code == 1 and "already holds keys.json, topicfeed.db" in refused.stderr

    app = create_app({"VERSION_TTL": 0}, instance)
    client = app.test_client()
    after = {p: client.get(p).data for p in FEEDS}
    assert after == before
    answer = client.get(f"/api/v1/articles/{created.json['id']}", headers={"Authorization": f"Bearer {paired['token']}"})
    assert answer.status_code == 200 and answer.json["title"] == NEW["title"]
    assert verify_object(answer.json, paired["secret"])
    assert "unchanged 61" in cli(instance, "import").stdout  # the restored files are the indexed ones
    get_store(app).close()


def curated_backup(site: dict, archive: Path) -> Path:
    """A curator write through the API, then a backup of the site; returns the record file."""
    admin = cli(site["instance"], "admin-token").stdout.strip()
    app = create_app({"VERSION_TTL": 0}, site["instance"])
    created = app.test_client().post("/api/v1/articles", json=NEW, headers={"Authorization": f"Bearer {admin}"})
    assert created.status_code == 201, created.json
    get_store(app).close()
    cli(site["instance"], "backup", str(archive))
    return site["root"] / "_news" / f"{created.json['id']}.md"


def test_restore_refuses_a_records_root_other_than_the_configured_one_unless_given(site, tmp_path, monkeypatch):
    """Moved to a machine whose content checkout is elsewhere (TOPICFEED_CONTENT_DIRS, as in the
    container): the record files would land where the instance never reads. Refused in one line
    naming both roots, before anything is written; ``--records-root DIR`` puts them in DIR."""
    archive = tmp_path / "backup.tar.gz"
    curated = curated_backup(site, archive)
    moved_root = tmp_path / "checkout"
    shutil.copytree(site["root"], moved_root)
    (moved_root / "_news" / curated.name).unlink()  # the checkout has the content, not the curator's files
    monkeypatch.setenv("TOPICFEED_CONTENT_DIRS", str(moved_root))
    target = tmp_path / "moved-instance"

    refused = cli(target, "restore", str(archive), check=False)
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert len(refused.stderr.strip().splitlines()) == 1
    assert f"backed up from {site['root']}" in refused.stderr and f"records root is {moved_root}" in refused.stderr
    assert "--records-root" in refused.stderr
    assert not target.exists() and not (moved_root / "_news" / curated.name).exists()

    out = cli(target, "restore", str(archive), "--records-root", str(moved_root)).stdout
    assert "1 curator record file(s)" in out
    assert (moved_root / "_news" / curated.name).read_bytes() == curated.read_bytes()
    cli(target, "import")
    feed = create_app({"VERSION_TTL": 0}, target).test_client().get("/feeds/all.json?limit=200").json
    assert NEW["title"] in [item["title"] for item in feed["items"]]


def test_restore_into_the_root_it_was_backed_up_from_needs_no_option(site, tmp_path):
    archive = tmp_path / "backup.tar.gz"
    curated = curated_backup(site, archive)
    kept = curated.read_bytes()
    curated.unlink()
    out = cli(tmp_path / "elsewhere", "restore", str(archive)).stdout  # the backup's config names the same root
    assert "1 curator record file(s)" in out and curated.read_bytes() == kept


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path):
    bogus = tmp_path / "x.tar.gz"
    bogus.write_bytes(b"not a tarball")
    proc = cli(tmp_path / "instance", "restore", str(bogus), check=False)
    assert proc.exit_code == 1 and f"{bogus}: not a topicfeed backup" in proc.stderr and proc.exception is not None \
        and isinstance(proc.exception, SystemExit)


def test_backup_of_a_fresh_instance_and_to_a_missing_folder_are_one_line_answers(tmp_path):
    """Right after `init` there is no index yet: the backup holds config and keys (no traceback);
    a FILE in a folder that does not exist is refused in one line naming it."""
    instance = tmp_path / "instance"
    cli(instance, "init")
    archive = tmp_path / "fresh.tar.gz"
    out = cli(instance, "backup", str(archive)).stdout
    assert "backed up" in out and "0 curator record file(s)" in out
    with tarfile.open(archive) as tar:
        assert {"config.toml", "keys.json"} <= set(tar.getnames()) and "topicfeed.db" not in tar.getnames()
    missing = tmp_path / "no-such-folder" / "b.tar.gz"
    proc = cli(instance, "backup", str(missing), check=False)
    assert proc.exit_code == 1 and isinstance(proc.exception, SystemExit) and str(missing) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_restore_of_a_truncated_backup_is_refused_in_one_line(site, tmp_path):
    """A backup cut short in transfer (its manifest still readable) is refused before anything
    is written, not answered with click's bare "Aborted!"."""
    archive = tmp_path / "backup.tar.gz"
    cli(site["instance"], "backup", str(archive))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    target = tmp_path / "restored"
    proc = cli(target, "restore", str(cut), check=False)
    assert proc.exit_code == 1 and isinstance(proc.exception, SystemExit)
    assert f"{cut}: not a topicfeed backup" in proc.stderr
    assert not (target / "keys.json").exists() and not (target / "topicfeed.db").exists()


def test_restore_refuses_an_index_that_is_not_sqlite_before_writing_anything(tmp_path):
    """A tampered or mixed-up backup whose ``topicfeed.db`` is not an SQLite file would leave an
    instance the server cannot open: refused in one line, the keys not written either."""
    archive = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in [("topicfeed-backup.json", b'{"format": 1, "database": "sqlite"}'),
                           ("keys.json", b"{}"), ("topicfeed.db", b"not a database")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "instance"
    proc = cli(target, "restore", str(archive), check=False)
    assert proc.exit_code == 1 and isinstance(proc.exception, SystemExit)
    assert "topicfeed.db" in proc.stderr and "SQLite" in proc.stderr
    assert not (target / "keys.json").exists() and not (target / "topicfeed.db").exists()


def test_healthz_and_metrics_report_the_import_log(site):
    app = create_app({"VERSION_TTL": 0}, site["instance"])
    client = app.test_client()
    health = client.get("/healthz").json
    assert health["last_import"]["result"] == "ok" and set(health["last_import"]) == {"finished", "duration_s", "result"}
    assert "added 60," in cli(site["instance"], "status").stdout
    client.get("/feeds/all.atom"), client.get("/feeds/all.atom"), client.get("/nope")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'topicfeed_imports_total{result="ok"} 1.0' in text
    assert 'topicfeed_articles{state="stored"} 60.0' in text and "topicfeed_bad_files 0.0" in text
    assert "topicfeed_last_import_duration_seconds" in text
    assert 'topicfeed_render_cache_lookups_total{outcome="hit"}' in text
    assert 'topicfeed_http_requests_total{family="feeds",status="200"}' in text
    assert 'topicfeed_http_requests_total{family="unmatched",status="404"}' in text
    get_store(app).close()


def test_a_failed_import_shows_result_and_time_publicly_and_its_error_only_to_the_operator(site):
    """The error text of a failed import may name paths, hosts or database messages: /healthz
    (public behind the shipped proxy, whose requests all come from loopback) gives the result
    and time only; /metrics says failed; ``topicfeed status`` gives the text."""
    secret = "/srv/private-checkout/_news/x.md: permission denied (db host pg-internal.corp:5432)"
    app = create_app({"VERSION_TTL": 0}, site["instance"])
    get_store(app).record_import(ImportStatus(time.time(), 1.25, "failed", secret))
    client = app.test_client()
    for peer in ("127.0.0.1", "203.0.113.9"):  # loopback is what every request through nginx looks like
        resp = client.get("/healthz", environ_base={"REMOTE_ADDR": peer})
        assert resp.status_code == 200 and resp.json["last_import"]["result"] == "failed"
        assert resp.json["last_import"]["finished"].endswith("+00:00")
        assert "private-checkout" not in resp.get_data(as_text=True) and "pg-internal" not in resp.get_data(as_text=True)
    assert "topicfeed_last_import_ok 0.0" in client.get("/metrics").get_data(as_text=True)
    out = cli(site["instance"], "status").stdout
    assert "last import: failed at " in out and secret in out and "imports: 1 ok, 1 failed" in out
    get_store(app).close()


def test_metrics_are_served_only_to_allowed_networks(site):
    app = create_app({"VERSION_TTL": 0}, site["instance"])
    outside = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 403 and "metrics_allow" in outside.get_data(as_text=True)
    app.config["METRICS_ALLOW"] = ["203.0.113.0/24"]
    assert app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    assert app.test_client().get("/metrics").status_code == 403  # loopback is no longer listed
    get_store(app).close()


def test_metrics_check_the_peer_not_a_forwarded_address(site):
    """With ``proxy_fix_hops`` set (the app behind nginx), a client that reaches the app port
    itself cannot claim loopback with ``X-Forwarded-For``: Prometheus scrapes the app directly,
    never through the proxy (which answers /metrics with 404), so the peer address is the one checked."""
    (site["instance"] / "config.toml").write_text((site["instance"] / "config.toml").read_text() + "proxy_fix_hops = 1\n")
    app = create_app({"VERSION_TTL": 0}, site["instance"])
    spoofed = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"},
                                    headers={"X-Forwarded-For": "127.0.0.1"})
    assert spoofed.status_code == 403 and "203.0.113.9" in spoofed.get_data(as_text=True)
    scraper = app.test_client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert scraper.status_code == 200  # a loopback peer is served whatever it forwards
    get_store(app).close()


def test_metrics_add_up_across_server_processes(site, tmp_path):
    """Two serve processes sharing one multiprocess folder (as workers of one server would):
    either one's /metrics counts the requests both answered."""
    shared = tmp_path / "prom"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "TOPICFEED_LOG_FORMAT": "json"}
    servers = [LiveServer(site["instance"], env), LiveServer(site["instance"], env)]
    try:
        for server, count in zip(servers, (3, 2)):
            for _ in range(count):
                urllib.request.urlopen(server.url + "/feeds/topics/ai.atom", timeout=10).read()
        # each process adds its counts to the shared folder within metrics.FLUSH_SECONDS
        total = 'topicfeed_http_requests_total{family="feeds",status="200"} 5.0'
        for server in servers:
            assert wait_for(lambda: total in urllib.request.urlopen(server.url + "/metrics", timeout=10).read().decode(),
                            "both processes' requests in /metrics")
        lines = [json.loads(line) for line in servers[0].access_log().splitlines() if line.startswith("{")]
        assert any(e["logger"] == "topicfeed.access" and "GET /feeds/topics/ai.atom" in e["message"] for e in lines)
        assert all({"time", "level", "logger", "message"} <= e.keys() for e in lines)
    finally:
        for server in servers:
            server.stop()


def test_one_import_at_a_time_across_processes(site):
    with import_lock(site["instance"]):
        proc = subprocess.Popen([sys.executable, "-m", "server", "--instance", str(site["instance"]), "import"],
                                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        waiting = wait_for(lambda: "another import is running" in proc.stderr.readline(), "the second import to wait")
        assert waiting and proc.poll() is None
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "unchanged 60" in out, err


def record(title: str, url: str) -> str:
    return (f"---\ntitle: {title}\nexcerpt: Seen by the watcher.\npublishedDateTime: '2032-05-06T07:08:09Z'\n"
            f"webUrl: {url}\ntype: article\nprovider:\n  name: InfoWorld\n  domain: infoworld.com\ntopics:\n- AI\n---\n")


def test_watch_imports_added_edited_and_removed_files_but_not_curator_writes(site):
    instance, root = site["instance"], site["root"]
    log = (instance.parent / "watch.log").open("w")
    watcher = subprocess.Popen([sys.executable, "-m", "server", "--instance", str(instance), "import", "--watch"],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "TOPICFEED_WATCH_DEBOUNCE": "0.5"},
                               stdout=log, stderr=subprocess.STDOUT)
    app = create_app({"VERSION_TTL": 0}, instance)
    store: Store = get_store(app)
    client = app.test_client()

    def feed() -> str:
        return client.get("/feeds/all.atom?limit=200").get_data(as_text=True)

    def imports() -> int:
        return store.import_counts().get("ok", 0)

    try:
        wait_for(lambda: "watching" in (instance.parent / "watch.log").read_text(), "the watcher to start")
        path = root / "_news" / "2032-05-06-seen-by-the-watcher.md"
        path.write_text(record("Added while watched", "https://www.infoworld.com/article/1/added.html"))
        wait_for(lambda: "Added while watched" in feed(), "the added file in the feed")
        path.write_text(record("Edited while watched", "https://www.infoworld.com/article/1/added.html"))
        wait_for(lambda: "Edited while watched" in feed() and "Added while watched" not in feed(), "the edit")
        path.unlink()
        wait_for(lambda: "Edited while watched" not in feed(), "the removal")
        assert f"removed {path}" in (instance.parent / "watch.log").read_text()

        # A burst (a git pull writing 150 files) is one import, once it is quiet.
        count = wait_for(imports, "the import count")
        for i in range(150):
            (root / "_news" / f"2033-01-01-burst-{i}.md").write_text(
                record(f"Burst {i}", f"https://www.infoworld.com/article/2/burst-{i}.html"))
        wait_for(lambda: "Burst 149" in feed(), "the burst in the feed")
        time.sleep(1.5)  # three quiet periods: a second import would show up now
        assert imports() == count + 1

        # A curator write indexes its record itself: the watcher sees its file and leaves it. On a
        # loaded machine the watcher may see the file before the write commits and import: that
        # import must not duplicate the article, and the feed shows it once either way.
        admin = cli(instance, "admin-token").stdout.strip()
        count = imports()
        assert client.post("/api/v1/articles", json=NEW, headers={"Authorization": f"Bearer {admin}"}).status_code == 201

        def seen() -> str:
            if "already holds (curator writes)" in (instance.parent / "watch.log").read_text():
                return "ignored"
            return "imported" if imports() > count else ""

        if wait_for(seen, "the watcher to see the curator's file") == "ignored":
            assert imports() == count
        assert feed().count("Kept by the curator") == 1
    finally:
        watcher.terminate()
        watcher.wait(30)
        log.close()
        store.close()
    assert watcher.returncode == 0, (instance.parent / "watch.log").read_text()


def test_watch_sees_a_record_folder_moved_out_of_the_root(site, tmp_path):
    """``mv _archive /elsewhere`` is one inotify event for the folder and none for its files:
    the watcher still removes the folder's articles from the index."""
    instance, root = site["instance"], site["root"]
    archive = root / "_archive" / "_news"
    archive.mkdir(parents=True)
    for i in range(3):
        (archive / f"2031-01-0{i + 1}-archived-{i}.md").write_text(
            record(f"Archived {i}", f"https://www.infoworld.com/article/3/archived-{i}.html"))
    log = (tmp_path / "watch.log").open("w")
    watcher = subprocess.Popen([sys.executable, "-m", "server", "--instance", str(instance), "import", "--watch"],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "TOPICFEED_WATCH_DEBOUNCE": "0.5"},
                               stdout=log, stderr=subprocess.STDOUT)
    app = create_app({"VERSION_TTL": 0}, instance)
    client = app.test_client()

    def feed() -> str:
        return client.get("/feeds/all.atom?limit=200").get_data(as_text=True)

    try:
        wait_for(lambda: "watching" in (tmp_path / "watch.log").read_text(), "the watcher to start")
        assert "Archived 2" in feed()
        shutil.move(str(root / "_archive"), str(tmp_path / "moved-away"))
        wait_for(lambda: "Archived" not in feed(), "the moved-away articles to leave the feed")
    finally:
        watcher.terminate()
        watcher.wait(30)
        log.close()
        get_store(app).close()


def test_a_missing_content_root_is_a_one_line_error(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'content_dirs = ["{tmp_path / "gone"}"]\n')
    cli(instance, "init")
    for args in (["import"], ["import", "--watch"]):
        result = cli(instance, *args, check=False)
        assert result.exit_code == 1 and f"content directory not found: {tmp_path / 'gone'}" in result.stderr
