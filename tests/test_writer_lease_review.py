"""Review of "one writer per database" (issue 15) as a self-hoster would try it: real
`topicfeed` commands and servers on a shared SQLite index (the lease logic is the same on
PostgreSQL but for the advisory lock, which tests/test_writer_lease.py covers).

Findings pinned here: an empty or garbled ``instance-id`` made an instance the "free" holder
(or a traceback); a one-off command (``status``, ``import``) on a stopped writer's folder kept
the lease for ``writer_lease_seconds`` and blocked the next writer; a clean stop of the server
ended the lease under its own running ``import --watch``; ``upgrade``/``downgrade`` from another
writer's folder changed the schema under the running writer; a copy of the writer's folder
elsewhere (a restore on a second machine while the first runs) was the same writer; a one-off
import went on writing after a take-over (now it stops, rolled back, over both databases and
``import --watch``); on SQLite a long import let its own lease lapse (its renewal waited behind
the import's write transaction); on PostgreSQL a database restart let a second writer in beside
a running one. No finding is open.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feeds.store import Store, index_revision, migrate
from server.writerlock import WriterLease, instance_id

from .conftest import copy_site, free_port
from .test_scaleout import ENV, Process, cli, configure
from .websub_subscriber import wait_for

BASE = "http://feeds.test"


def _two_writers(tmp_path: Path, **extra: object) -> tuple[str, Path, Path, Path]:
    """(index URL, writer a, writer b, content) on one shared SQLite index."""
    index = f"sqlite:///{tmp_path / 'shared.db'}"
    Store(index).close()
    content = copy_site(tmp_path / "content")
    a, b = tmp_path / "a", tmp_path / "b"
    for instance in (a, b):
        configure(instance, role="writer", database_url=index, public_base_url=BASE,
                  content_dirs=[str(content)], **extra)
    return index, a, b, content


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize("content", [b"", b"\n", b"\xff\xfe\n", b"my writer\n"])
def test_an_empty_or_garbled_instance_id_is_refused_in_one_line_naming_the_file(tmp_path, content):
    """An empty `instance-id` read as "" — the holder of the free lease — so such an instance
    "claimed" without taking anything (two of them both ran as the writer, `writer status`
    said no writer had claimed); bytes that are not ASCII were a traceback in `writer status`."""
    index, a, _, _ = _two_writers(tmp_path)
    (a / "instance-id").write_bytes(content)
    for args in (("config",), ("writer", "status"), ("import",), ("writer", "take-over")):
        message = _one_line_error(cli(a, *args))
        assert str(a / "instance-id") in message and "16 hex digits" in message, (args, message)
    assert Store(index).lease.current().holder == ""  # nothing claimed


def test_an_unreachable_database_is_reported_for_the_instance_given_to_a_writer_subcommand(tmp_path):
    """`topicfeed writer status --instance B` with PostgreSQL down named ./instance (the
    default folder), not B: the nested command's --instance was not seen by the group's handler."""
    b = tmp_path / "b"
    configure(b, role="writer", database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none",
              public_base_url=BASE)
    for args in (("writer", "status"), ("writer", "take-over"), ("status",)):
        message = _one_line_error(cli(b, *args))
        assert f"instance {b}: setting 'database_url'" in message, (args, message)


def test_a_one_off_command_on_a_stopped_writers_folder_leaves_the_lease_free(tmp_path):
    """`topicfeed status` (or an `import`) on writer a's folder while no server of a runs: the
    command exits and the lease is free again, so writer b starts at once (it waited for
    `writer_lease_seconds`, 30 s, behind a `topicfeed status`)."""
    index, a, b, content = _two_writers(tmp_path)
    for args in (("status",), ("import", str(content))):
        done = cli(a, *args)
        assert done.returncode == 0, done.stderr
        lease = Store(index).lease.current()
        assert lease.holder == instance_id(a) and not lease.live, (args, lease)
    status = cli(a, "writer", "status")  # it said "lease ended 1795981802 s ago" (since the epoch)
    assert status.returncode == 0 and "lease released (it stopped cleanly)" in status.stdout, status.stdout
    done = cli(b, "import", str(content))
    assert done.returncode == 0, done.stderr
    assert Store(index).lease.current().holder == instance_id(b)


def test_a_clean_stop_of_the_server_keeps_the_lease_while_its_import_watch_runs(tmp_path):
    """The documented deployment runs `serve` and `import --watch` on one writer folder. A
    restart of the server (SIGTERM) ended the lease while the watch still ran, so another
    writer's import was let in beside it. Now the lease ends with the last process of the
    writer: b is refused while a's watch runs and starts once the watch stops."""
    index, a, b, content = _two_writers(tmp_path, writer_lease_seconds=30)
    server = Process("a", a, free_port()).start()
    log = (tmp_path / "watch.log").open("w")
    watch = subprocess.Popen([sys.executable, "-m", "server", "import", "--watch", "--instance", str(a)],
                             stdout=log, stderr=subprocess.STDOUT, env=ENV)
    try:
        wait_for(lambda: "watching" in (tmp_path / "watch.log").read_text(), timeout=60, what="the watch to start")
        server.stop()
        assert server.proc.returncode is not None
        lease = Store(index).lease.current()
        assert lease.holder == instance_id(a) and lease.live, lease
        assert "another writer holds this database" in _one_line_error(cli(b, "import", str(content)))
        watch.send_signal(signal.SIGTERM)
        assert watch.wait(30) == 0, (tmp_path / "watch.log").read_text()
        assert not Store(index).lease.current().live  # the last process of a ended it
        assert cli(b, "import", str(content)).returncode == 0
    finally:
        server.stop()
        if watch.poll() is None:
            watch.kill()


def test_a_take_over_stops_the_old_writers_import_watch(tmp_path):
    """README: after `topicfeed writer take-over` on b, a's `import --watch` stops (one line
    naming `writer status`) from its next renewal on, and b's import runs."""
    index, a, b, content = _two_writers(tmp_path, writer_lease_seconds=3)
    log = (tmp_path / "watch.log").open("w")
    watch = subprocess.Popen([sys.executable, "-m", "server", "import", "--watch", "--instance", str(a)],
                             stdout=log, stderr=subprocess.STDOUT, env=ENV)
    try:
        wait_for(lambda: "watching" in (tmp_path / "watch.log").read_text(), timeout=60, what="the watch to start")
        assert "another writer holds this database" in _one_line_error(cli(b, "import", str(content)))
        assert cli(b, "writer", "take-over").returncode == 0
        assert watch.wait(30) == 1
        assert "stopped watching: another writer took the writer lease over" in (tmp_path / "watch.log").read_text()
        assert Store(index).lease.current().holder == instance_id(b)  # the watch's exit did not end b's lease
        assert cli(b, "import", str(content)).returncode == 0
    finally:
        if watch.poll() is None:
            watch.kill()


def test_a_migration_from_another_writers_folder_is_refused_while_the_writer_holds_the_lease(tmp_path):
    """`topicfeed downgrade` (and `upgrade`) from writer b's folder while a holds the lease
    changed the schema under the running writer (a downgrade to 0007 even dropped the lease
    table). Now refused in one line naming a, nothing changed; a itself may migrate."""
    index, a, b, _ = _two_writers(tmp_path)
    holder = Store(index)
    try:
        WriterLease(holder, a, 60).claim()  # a runs
        for args in (("downgrade", "0007"), ("upgrade",)):
            message = _one_line_error(cli(b, *args))
            assert "another writer holds this database" in message and str(a) in message, message
        assert index_revision(index)[0] == migrate.HEAD
        assert cli(b, "upgrade", "--show").returncode == 0  # reading the revision is fine
        done = cli(a, "upgrade")
        assert done.returncode == 0 and "already at revision" in done.stdout, done.stderr
    finally:
        holder.close()


def test_a_copy_of_the_writers_folder_elsewhere_is_refused_while_the_writer_runs(tmp_path):
    index, a, _, content = _two_writers(tmp_path)
    server = Process("a", a, free_port()).start()
    try:
        copy = tmp_path / "restored-elsewhere"
        shutil.copytree(a, copy, ignore=shutil.ignore_patterns("*.log", "metrics"))
        assert instance_id(copy) == instance_id(a)
        done = cli(copy, "import", str(content))
        assert done.returncode == 1 and "another writer" in done.stderr, done.stderr
    finally:
        server.stop()


@pytest.fixture(scope="module")
def big_content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic content whose import takes many seconds on this machine (tens of leases of 2 s)."""
    out = tmp_path_factory.mktemp("big") / "content"
    done = subprocess.run([sys.executable, "-m", "server", "demo-content", str(out), "--articles", "20000"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


def _long_import(tmp_path: Path, content: Path, index: str | None = None,
                 *args: str) -> tuple[str, Path, Path, subprocess.Popen]:
    """Writers a and b (2 s leases) on ``index`` (default a fresh SQLite one), a's long
    ``import`` (``args``: e.g. ``--watch``) of ``content`` started."""
    if index is None:
        index = f"sqlite:///{tmp_path / 'shared.db'}"
    Store(index).close()
    a, b = tmp_path / "a", tmp_path / "b"
    for instance in (a, b):
        configure(instance, role="writer", database_url=index, public_base_url=BASE, writer_lease_seconds=2,
                  db_pool_size=2)
    log = (tmp_path / "import.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "server", "import", *args, str(content), "--instance", str(a)],
                            stdout=log, stderr=subprocess.STDOUT, env=ENV)
    wait_for(lambda: Store(index).lease.current().holder == instance_id(a), timeout=60, what="a's import to claim")
    return index, a, b, proc


def test_on_sqlite_a_long_import_keeps_its_lease_live(tmp_path, big_content):
    """The import's one transaction holds SQLite's write lock: its row is not renewed meanwhile
    (a renewal inside that transaction would be invisible to others until it commits), but
    the lock file next to the database says it runs, so the lease stays live and b, trying while
    the row is past its expiry, is refused; `writer status` says so."""
    index, a, b, proc = _long_import(tmp_path, big_content)
    lapsed = []
    try:
        wait_for(lambda: Store(index).lease.current().expires_ms < Store(index).lease.current().now_ms,
                 timeout=120, what="a's row to pass its expiry while the import writes")
        assert proc.poll() is None, "the import ended first: make the content bigger"
        assert "another writer holds this database" in _one_line_error(cli(b, "import", str(big_content)))
        assert "still running" in cli(b, "writer", "status").stdout
        while proc.poll() is None:
            lease = Store(index).lease.current()  # WAL: reading is never blocked by the import
            if proc.poll() is None and not lease.live and lease.expires_ms:  # 0: released at its exit
                lapsed.append(lease.now_ms - lease.expires_ms)
            time.sleep(0.5)
    finally:
        proc.wait(600)
    assert proc.returncode == 0, (tmp_path / "import.log").read_text()[-2000:]
    assert lapsed == [], f"the lease had lapsed (by up to {max(lapsed)} ms) while the import ran"


def test_a_take_over_during_a_one_off_import_stops_it(tmp_path, big_content):
    index, a, b, proc = _long_import(tmp_path, big_content)
    try:
        # the import holds SQLite's write lock most of the time: a take-over may meet "database
        # is locked" and is tried again, as a person would
        wait_for(lambda: cli(b, "writer", "take-over").returncode == 0, timeout=120, what="the take-over")
        assert proc.poll() is None, "the import ended before the take-over: make the content bigger"
        proc.wait(600)
        log = (tmp_path / "import.log").read_text()
        assert proc.returncode == 1 and "took the writer lease over" in log and instance_id(b) in log, log[-2000:]
        assert Store(index).stats()["articles"] == 0  # its one transaction rolled back: nothing half-written
        done = cli(b, "import", str(big_content))  # the new writer imports it all
        assert done.returncode == 0 and "added 20000," in done.stdout, done.stderr[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("watch", [False, True], ids=["import", "import-watch"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_take_over_stops_the_old_writers_import_in_progress(request, tmp_path, big_content, kind, watch):
    """Over both databases, a one-off import and the first import of `import --watch`: a
    take-over on b while a's import writes stops a's process (exit 1, one line naming b) and
    rolls its import back (no article half-imported); b holds the lease."""
    index = None if kind == "sqlite" else request.getfixturevalue("cluster").create_db(f"take_over_{watch}")
    index, _, b, proc = _long_import(tmp_path, big_content, index, *(["--watch"] if watch else []))
    try:
        wait_for(lambda: cli(b, "writer", "take-over").returncode == 0, timeout=120, what="the take-over")
        assert proc.wait(600) == 1
        log = (tmp_path / "import.log").read_text()
        assert "took the writer lease over" in log and instance_id(b) in log and "Traceback" not in log, log[-2000:]
        assert "quiet period" not in log  # stopped inside its first import, before "watching …"
        assert Store(index).stats()["articles"] == 0
        assert Store(index).lease.current().holder == instance_id(b)
    finally:
        if proc.poll() is None:
            proc.kill()


# ---- PostgreSQL ------------------------------------------------------------------------------

def test_on_postgresql_a_database_restart_does_not_let_a_second_writer_in_beside_a_running_one(cluster, tmp_path):
    """Writer a serves with a live lease; PostgreSQL restarts (a minor-version upgrade), which
    drops every session and so a's advisory lock. Writer b's import right after must still be
    refused: a is alive and its lease has not run out."""
    database = cluster.create_db("review_restart")
    content = copy_site(tmp_path / "content")
    a, b = tmp_path / "a", tmp_path / "b"
    for instance in (a, b):
        configure(instance, role="writer", database_url=database, public_base_url=BASE, db_pool_size=2,
                  content_dirs=[str(content)], writer_lease_seconds=600)
    server = Process("a", a, free_port()).start()
    try:
        assert "another writer holds this database" in _one_line_error(cli(b, "import"))
        cluster.restart()
        done = cli(b, "import")
        assert done.returncode == 1 and "another writer holds this database" in done.stderr, done.stderr
    finally:
        server.stop()


@pytest.mark.parametrize("skew", ["-1h", "+1h"])
def test_on_postgresql_the_lease_follows_the_database_clock_not_a_skewed_writer_machine(cluster, tmp_path, skew):
    """Writer a's machine clock is an hour off (libfaketime) while its `import --watch` runs: b
    (right clock) is still refused, and `writer status` tells the lease's time left by the
    database's clock (an hour behind, a's lease would look long expired; ahead, an hour long)."""
    faketime = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
    if not faketime.exists():
        pytest.skip("needs Debian's faketime (.ci/run installs it)")
    database = cluster.create_db(f"review_skew_{skew[0] == '+'}")
    content = copy_site(tmp_path / "content")
    a, b = tmp_path / "a", tmp_path / "b"
    for instance in (a, b):
        configure(instance, role="writer", database_url=database, public_base_url=BASE, db_pool_size=2,
                  content_dirs=[str(content)], writer_lease_seconds=30)
    log = (tmp_path / "watch.log").open("w")
    env = {**ENV, "LD_PRELOAD": str(faketime), "FAKETIME": skew, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    seen = subprocess.run([sys.executable, "-c", "import time; print(time.time())"], env=env,
                          capture_output=True, text=True, check=True)
    assert abs(float(seen.stdout) - time.time() - (3600 if skew[0] == "+" else -3600)) < 60  # the skew is real
    watch = subprocess.Popen([sys.executable, "-m", "server", "import", "--watch", "--instance", str(a)],
                             stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: "watching" in (tmp_path / "watch.log").read_text(), timeout=60, what="the watch to start")
        assert "another writer holds this database" in _one_line_error(cli(b, "import"))
        status = cli(b, "writer", "status").stdout
        left = int(status.split("lease ends in ")[1].split(" s")[0])
        assert 0 < left <= 30, status
    finally:
        watch.terminate()
        watch.wait(30)
