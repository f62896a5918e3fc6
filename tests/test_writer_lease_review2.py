"""Second review of "one writer per database" (issue 15), as a self-hoster would try to break
it: real `topicfeed serve` processes and CLI commands on SQLite and a real PostgreSQL cluster.

Finding pinned here: on PostgreSQL a writer frozen (SIGSTOP, a paused VM, a long network
partition) across a `writer take-over` whose new writer had not started yet re-took the lease
at its next renewal, because a renewal also accepted *any* expired row, another writer's
included: the take-over was silently undone and the new writer then refused to start. On SQLite
a take-over from a restore of the writer's backup into another folder (the same instance id at
another site) did not stop the writer's import in progress: the old writer's renewal ignored
the take-over note because it named its own instance id. A running writer whose machine was
renamed (DHCP, `hostnamectl set-hostname`) took its own next renewal for a take-over ("taken
over by another writer (instance <its own id> at <its old name>…)") and refused every write.

A take-over landed in the old writer's process only at its next renewal (every third of
`writer_lease_seconds`), so an import that ended before then committed after the take-over:
every write transaction now checks the lease just before it commits.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from feeds.store import Store
from server.writerlock import instance_id

from .conftest import copy_site, free_port
from .test_writer_lease_review import _long_import, big_content  # noqa: F401 (a fixture)
from .test_scaleout import ARTICLE, ENV, Process, cli, configure, http
from .websub_subscriber import wait_for

BASE = "http://feeds.test"


def test_on_postgresql_a_frozen_writer_does_not_undo_a_take_over_when_it_wakes(cluster, tmp_path):
    """Writer a serves and is frozen (SIGSTOP). `topicfeed writer take-over` on b; b's server
    is not started before b's lease runs out (its record files are being restored). a wakes
    (SIGCONT): its next renewal must find the lease taken over (a refuses writes with 421), not
    re-take the expired row; b's server then starts as the writer."""
    database = cluster.create_db("review2_frozen")
    shared = {"database_url": database, "public_base_url": BASE, "db_pool_size": 2, "writer_lease_seconds": 3,
              "api_access": "public"}
    a, b = (tmp_path / n / "instance" for n in ("a", "b"))
    for instance in (a, b):
        configure(instance, role="writer", content_dirs=[str(copy_site(instance.parent / "content"))], **shared)
    writer_a = Process("a", a, free_port()).start()
    writer_b = None
    try:
        token = cli(a, "admin-token").stdout.strip()
        os.killpg(writer_a.proc.pid, signal.SIGSTOP)
        done = cli(b, "writer", "take-over")
        assert done.returncode == 0, done.stderr
        store = Store(database)
        wait_for(lambda: not store.lease.current().expires_ms > store.lease.current().now_ms, timeout=60,
                 what="b's lease (no process of b runs yet) to run out")
        os.killpg(writer_a.proc.pid, signal.SIGCONT)
        probes = iter(range(1000))
        wait_for(lambda: http("POST", writer_a.url + "/api/v1/articles",
                              ARTICLE | {"id": f"probe-{next(probes)}",
                                         "webUrl": f"https://example.org/p{next(probes)}.html"}, token)[0] == 421,
                 timeout=60, what="a to refuse writes after waking")
        assert store.lease.current().holder == instance_id(b)
        writer_b = Process("b", b, free_port()).start()
        assert store.lease.current().holder == instance_id(b)
    finally:
        if writer_a.proc.poll() is None:
            os.killpg(writer_a.proc.pid, signal.SIGCONT)
        writer_a.stop()
        if writer_b is not None:
            writer_b.stop()


def test_on_sqlite_a_take_over_from_a_restore_of_the_writer_into_another_folder_stops_its_import(tmp_path,
                                                                                                big_content):
    """The writer's folder restored into another folder (DEPLOY.md: the same instance id, another
    site) runs `writer take-over` while the writer's import writes: the import must stop (exit
    1, one line naming the taker, rolled back) as for any other taker, and the restore hold the
    lease. The old writer's renewal read the note in the lock file as its own (same instance id)
    and went on importing, while the take-over waited for SQLite's write lock."""
    index, a, _, proc = _long_import(tmp_path, big_content)
    restored = tmp_path / "restored"
    shutil.copytree(a, restored, ignore=shutil.ignore_patterns("*.log", "metrics", ".writer-running"))
    assert instance_id(restored) == instance_id(a)
    try:
        # SQLite's write lock, held by the import, may answer the take-over "database is locked": tried again
        wait_for(lambda: cli(restored, "writer", "take-over").returncode == 0 or proc.poll() is not None,
                 timeout=300, what="the take-over")
        assert proc.wait(600) == 1, (tmp_path / "import.log").read_text()[-2000:]
        log = (tmp_path / "import.log").read_text()
        assert "took the writer lease over" in log and "Traceback" not in log, log[-2000:]
        assert Store(index).stats()["articles"] == 0  # rolled back
        lease = Store(index).lease.current()
        assert lease.holder == instance_id(a) and str(restored.resolve()) in lease.where, lease
    finally:
        if proc.poll() is None:
            proc.kill()


def _uts_namespaces_work() -> bool:
    """Whether this machine lets us run a process with a host name of its own (root, or user namespaces)."""
    return subprocess.run(["unshare", "-u", "sh", "-c", "hostname probe-host"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _uts_namespaces_work(), reason="needs `unshare -u` (root or user namespaces)")
def test_a_running_writer_whose_machine_is_renamed_stays_the_writer(tmp_path):
    """Writer a serves in a UTS namespace named h1; the machine is renamed h2 (`hostname` in that
    namespace) while it runs. Its renewals go on (the lease still says h1, the name it started
    with) and curator writes still answer 201: it did not demote itself."""
    index = f"sqlite:///{tmp_path / 'shared.db'}"
    Store(index).close()
    a = tmp_path / "a"
    configure(a, role="writer", database_url=index, public_base_url=BASE, writer_lease_seconds=3,
              api_access="public", content_dirs=[str(copy_site(tmp_path / "content"))])
    token = cli(a, "admin-token").stdout.strip()  # before a runs as h1: from here it would be a copy elsewhere
    port = free_port()
    log = (tmp_path / "a.log").open("w")
    proc = subprocess.Popen(["unshare", "-u", "sh", "-c", 'hostname h1 && exec "$@"', "sh", sys.executable, "-m",
                             "server", "serve", "--instance", str(a), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=120, what="a to serve")
        store = Store(index)
        assert store.lease.current().where.startswith("h1:")
        subprocess.run(["nsenter", "-u", "-t", str(proc.pid), "hostname", "h2"], check=True)
        renamed = store.lease.current().now_ms
        # two renewal periods (a third of 3 s each) after the rename, polled by the lease's own clock
        wait_for(lambda: store.lease.current().now_ms > renamed + 3000, timeout=60, what="two renewals")
        status, _, body = http("POST", url + "/api/v1/articles", ARTICLE | {"id": "after-rename"}, token)
        assert status == 201, body
        assert "taken over" not in (tmp_path / "a.log").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def _answers(url: str) -> bool:
    try:
        return http("GET", url + "/healthz")[0] == 200
    except OSError:
        return False


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_take_over_stops_an_import_that_ends_before_the_old_writers_next_renewal(request, tmp_path,
                                                                                   big_content, kind):
    """a's import runs with a long lease (600 s: renewals 200 s apart); b takes over while it
    writes. README: "an import in progress stops with one line naming the new writer and rolls
    its transaction back (nothing of it is committed)". It committed everything and exited 0: the
fence was set only by a renewal, now each write transaction checks the lease before it commits."""
    if kind == "sqlite":
        index = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        index = request.getfixturevalue("cluster").create_db("review2_commit_after_take_over")
    Store(index).close()
    a, b = tmp_path / "a", tmp_path / "b"
    for instance in (a, b):
        configure(instance, role="writer", database_url=index, public_base_url=BASE, writer_lease_seconds=600,
                  db_pool_size=2)
    log = (tmp_path / "import.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "server", "import", str(big_content), "--instance", str(a)],
                            stdout=log, stderr=subprocess.STDOUT, env=ENV)
    try:
        wait_for(lambda: Store(index).lease.current().holder == instance_id(a), timeout=60, what="a's import to claim")
        wait_for(lambda: cli(b, "writer", "take-over").returncode == 0 or proc.poll() is not None, timeout=300,
                 what="the take-over")
        assert Store(index).lease.current().holder == instance_id(b), "the import ended first: make it bigger"
        proc.wait(600)
        assert Store(index).stats()["articles"] == 0, "a's import committed after the take-over"
        assert proc.returncode == 1, (tmp_path / "import.log").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
