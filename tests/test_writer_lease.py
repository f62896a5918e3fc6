"""One writer per database (issue 15): the writer lease (server/writerlock.py, feeds/store/lease.py).

Table tests over roles × identities × lease states on SQLite (apps built in this process, as
every `topicfeed` command builds one), imports and take-overs through the real CLI, and the
take-over and crash cases with real `topicfeed serve` processes on PostgreSQL.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from feeds.store import Store
from server import create_app
from server.roles import writer_lease
from server.writerlock import WriterBusy, WriterLease, instance_id, location

from .conftest import copy_site, free_port
from .test_scaleout import ARTICLE, Process, article, cli, configure, http
from .websub_subscriber import wait_for

BASE = "http://feeds.test"


def _index(tmp_path: Path) -> str:
    """A shared SQLite index, migrated, whose lease no writer has claimed."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    Store(url).close()
    return url


def _settings(role: str, index: str) -> dict:
    extra = {"WRITER_URL": "http://writer.test"} if role == "reader" else {}
    return {"ROLE": role, "DATABASE_URL": index, "PUBLIC_BASE_URL": BASE, **extra}


def _put_lease_in(state: str, index: str, holder: Path) -> None:
    """Leave the lease ``free`` (never claimed), ``live`` (``holder`` holds it), ``expired`` (it
    held it and stopped renewing) or ``released`` (it stopped cleanly)."""
    if state == "free":
        return
    store = Store(index)
    try:
        lease = WriterLease(store, holder, 0.05 if state == "expired" else 60)
        lease.claim()
        if state == "expired":
            time.sleep(0.1)
        elif state == "released":
            store.lease.release(lease.id, location(holder))
    finally:
        store.close()


@pytest.mark.parametrize("state", ["free", "live", "expired", "released"])
@pytest.mark.parametrize("identity", ["same", "other"])
@pytest.mark.parametrize("role", ["single", "writer", "reader"])
def test_who_may_start_by_role_identity_and_lease_state(tmp_path, role, identity, state):
    """Only a writer (single or writer) of another instance meeting a live lease is refused;
    the same instance restarting starts at once; readers never look at the lease."""
    index = _index(tmp_path)
    holder = tmp_path / "writer"
    holder.mkdir()
    _put_lease_in(state, index, holder)
    instance = holder if identity == "same" else tmp_path / "second"
    refused = role != "reader" and identity == "other" and state == "live"
    if refused:
        with pytest.raises(WriterBusy) as caught:
            create_app(_settings(role, index), instance)
        message = str(caught.value)
        assert "\n" not in message and f"instance {instance_id(holder)} at " in message
        assert str(holder) in message and "topicfeed writer take-over" in message
        assert Store(index).lease.current().holder == instance_id(holder)  # nothing changed
    else:
        app = create_app(_settings(role, index), instance)
        lease = Store(index).lease.current()
        if role == "reader":
            assert writer_lease(app) is None
            assert lease.holder == ("" if state == "free" else instance_id(holder))
        else:
            assert lease.holder == instance_id(instance) and lease.live


def test_the_server_and_an_import_on_one_instance_folder_are_one_writer(tmp_path):
    """`topicfeed import` (and the server's start-up sync) beside the writer's own server keep
    working; an import from another instance folder is refused in one line, changes nothing,
    and works once the lease is free again."""
    index = _index(tmp_path)
    content = copy_site(tmp_path / "content")
    for name in ("writer", "second"):
        configure(tmp_path / name, role="writer", database_url=index, public_base_url=BASE)
    writer = create_app(None, tmp_path / "writer", init=False)  # the writer's server holds the lease
    done = cli(tmp_path / "writer", "import", str(content))
    assert done.returncode == 0, done.stderr
    articles = Store(index).stats()["articles"]
    assert articles > 0
    for args in (("import", str(content)), ("import", "--watch", str(content)), ("config",)):
        done = cli(tmp_path / "second", *args)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, (args, done.stderr)
        assert "another writer holds this database" in done.stderr and str(tmp_path / "writer") in done.stderr
    status = cli(tmp_path / "second", "writer", "status")
    assert status.returncode == 0 and f"writer: instance {instance_id(tmp_path / 'writer')}" in status.stdout
    assert Store(index).lease.current().holder == instance_id(tmp_path / "writer")
    writer_lease(writer).store.lease.release(instance_id(tmp_path / "writer"), location(tmp_path / "writer"))  # a clean stop
    done = cli(tmp_path / "second", "import", str(content))
    assert done.returncode == 0, done.stderr
    assert Store(index).lease.current().holder == instance_id(tmp_path / "second")


def test_a_take_over_moves_the_lease_and_the_old_writer_refuses_writes(tmp_path):
    """`topicfeed writer take-over` on a new writer's instance (the old one's machine died before
    its lease ran out): the new one starts; the old one, if it still runs, answers writes 421
    naming the new writer from its next renewal on, and reads go on."""
    index = _index(tmp_path)
    for name in ("old", "new"):
        (tmp_path / f"{name}-content").mkdir()
        configure(tmp_path / name, role="writer", database_url=index, public_base_url=BASE,
                  writer_lease_seconds=3, content_dirs=[str(tmp_path / f"{name}-content")])
    shutil.copy2(tmp_path / "old" / "keys.json", tmp_path / "new" / "keys.json")
    old = create_app({"API_ACCESS": "public"}, tmp_path / "old", init=False)
    writer_lease(old).hold()  # as `serve` does: renewed every second
    token = cli(tmp_path / "old", "admin-token").stdout.strip()
    client = old.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/articles", json=ARTICLE | {"id": "before-take-over"}, headers=headers).status_code == 201
    taken = cli(tmp_path / "new", "writer", "take-over")
    assert taken.returncode == 0, taken.stderr
    assert f"holds the writer lease now (was instance {instance_id(tmp_path / 'old')}" in taken.stdout
    assert create_app(None, tmp_path / "new", init=False)  # starts
    wait_for(lambda: writer_lease(old).lost.is_set(), timeout=30, what="the old writer to notice")
    answer = client.post("/api/v1/articles", json=ARTICLE | {"id": "after-take-over"}, headers=headers)
    assert answer.status_code == 421, answer.get_data()
    assert instance_id(tmp_path / "new") in answer.json["detail"] and "writer" in answer.json
    assert client.get("/feeds/all.atom").status_code == 200
    assert not (tmp_path / "old-content" / "_news" / "after-take-over.md").exists()
    writer_lease(old).stop()


def test_a_reader_cannot_take_over(tmp_path):
    index = _index(tmp_path)
    configure(tmp_path / "reader", role="reader", database_url=index, public_base_url=BASE,
              writer_url="http://writer.test")
    done = cli(tmp_path / "reader", "writer", "take-over")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "reader" in done.stderr, done.stderr
    assert Store(index).lease.current().holder == ""


# ---- real processes on PostgreSQL ----------------------------------------------------------

def _serve_fails(instance: Path) -> str:
    """stderr of a `topicfeed serve` that must refuse to start (one line)."""
    done = cli(instance, "serve", "--port", str(free_port()))
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr[-800:]
    return done.stderr


def test_on_postgresql_a_second_writer_is_refused_and_replaces_a_killed_one_soon(cluster, tmp_path):
    """Writer A serves; writer B's serve and import are refused naming A; A's own import works
    beside its server; a reader starts. A is killed (kill -9): B gets in once no process of A
    holds the advisory lock and A missed a renewal (half its lease), without a take-over."""
    database = cluster.create_db("lease_kill")
    shared = {"database_url": database, "public_base_url": BASE, "db_pool_size": 2}
    content = copy_site(tmp_path / "content")
    a, b, r = (tmp_path / n / "instance" for n in ("a", "b", "r"))
    configure(a, role="writer", content_dirs=[str(content)], writer_lease_seconds=8, **shared)
    configure(b, role="writer", content_dirs=[str(content)], writer_lease_seconds=8, **shared)
    configure(r, role="reader", writer_url="http://a.test", **shared)
    assert cli(a, "import").returncode == 0
    shutil.copy2(a / "keys.json", r / "keys.json")
    writer_a = Process("a", a, free_port()).start()
    try:
        refusal = _serve_fails(b)
        assert "another writer holds this database" in refusal and str(a) in refusal
        assert "topicfeed writer take-over" in refusal
        done = cli(b, "import")
        assert done.returncode == 1 and "another writer holds this database" in done.stderr, done.stderr
        done = cli(a, "import")  # beside its own server
        assert done.returncode == 0, done.stderr
        reader = Process("r", r, free_port()).start()
        reader.stop()
        lease = Store(database).lease.current()
        assert lease.holder == instance_id(a) and lease.live and lease.running
        writer_a.kill()
        wait_for(lambda: cli(b, "import").returncode == 0, timeout=120, what="B to replace the killed A")
        writer_b = Process("b", b, free_port()).start()  # no take-over
        writer_b.stop()
        assert Store(database).lease.current().holder == instance_id(b)
    finally:
        writer_a.stop()


def test_on_postgresql_a_take_over_demotes_a_running_writer(cluster, tmp_path):
    """A is alive but must go (its machine is being retired): `topicfeed writer take-over` on B;
    A's next renewal sees it, A answers curator writes 421 naming B's instance; B serves writes.
    A clean stop of B ends its lease (the next writer need not wait)."""
    database = cluster.create_db("lease_take_over")
    shared = {"database_url": database, "public_base_url": BASE, "db_pool_size": 2, "writer_lease_seconds": 3,
              "api_access": "public"}
    a, b = (tmp_path / n / "instance" for n in ("a", "b"))
    for instance in (a, b):
        configure(instance, role="writer", content_dirs=[str(copy_site(instance.parent / "content"))], **shared)
    shutil.copy2(a / "keys.json", b / "keys.json")
    writer_a = Process("a", a, free_port()).start()
    writer_b = None
    try:
        token = cli(a, "admin-token").stdout.strip()
        assert http("POST", writer_a.url + "/api/v1/articles", ARTICLE | {"id": "on-a"}, token)[0] == 201
        done = cli(b, "writer", "take-over")
        assert done.returncode == 0 and instance_id(a) in done.stdout, done.stderr
        # until its next renewal (a third of the lease) A still writes: each probe is a new article
        probes = iter(range(1000))
        wait_for(lambda: http("POST", writer_a.url + "/api/v1/articles",
                              article(f"probe-{next(probes)}", "Probe"), token)[0] == 421,
                 timeout=30, what="A to refuse writes")
        status, _, body = http("POST", writer_a.url + "/api/v1/articles", ARTICLE | {"id": "late-on-a"}, token)
        assert status == 421 and instance_id(b).encode() in body
        assert http("GET", writer_a.url + "/feeds/all.atom")[0] == 200  # reads go on
        writer_b = Process("b", b, free_port()).start()
        status, _, body = http("POST", writer_b.url + "/api/v1/articles",
                               ARTICLE | {"id": "on-b", "webUrl": "https://example.org/on-b.html"}, token)
        assert status == 201, body
        assert not (a.parent / "content" / "_news" / "late-on-a.md").exists()
        writer_b.stop()  # SIGTERM: a clean stop releases the lease
        assert Store(database).lease.current().expires_ms == 0  # released, not left to run out
    finally:
        writer_a.stop()
        if writer_b is not None:
            writer_b.stop()


# ---- the claim rule, over both databases ------------------------------------------------------

def _database(request: pytest.FixtureRequest, kind: str, tmp_path: Path, name: str) -> str:
    """A migrated SQLite or PostgreSQL (the module's cluster) database whose lease is free."""
    if kind == "sqlite":
        return _index(tmp_path)
    url = request.getfixturevalue("cluster").create_db(name)
    Store(url).close()
    return url


# (the holder's lease in seconds, seconds waited after its claim): fresh, overdue (a renewal
# missed: half the lease gone, not all of it) and expired
ROW_STATES = {"fresh": (60, 0), "overdue": (8, 5), "expired": (0.5, 1.5)}


@pytest.mark.parametrize("claimant", ["other", "copy"])
@pytest.mark.parametrize("running", [True, False], ids=["running", "killed"])
@pytest.mark.parametrize("row", list(ROW_STATES))
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_who_may_claim_by_running_lock_row_state_and_identity(request, tmp_path, kind, row, running, claimant):
    """A claimant (another instance folder, or a copy of the holder's folder: same instance-id,
    another path) gets the lease only when no writer process runs (its running lock: advisory
    lock or lock file) and the holder missed a renewal or expired. A running holder whose row
    expired (SQLite: its import held the write lock) keeps it; a killed one with a fresh row
    (a PostgreSQL restart drops every session: it may be alive) keeps it for now."""
    index = _database(request, kind, tmp_path, f"claim_{row}_{running}_{claimant}")
    holder_dir = tmp_path / "holder"
    holder_dir.mkdir()
    seconds, wait = ROW_STATES[row]
    held, theirs = Store(index), Store(index)
    try:
        holder = WriterLease(held, holder_dir, seconds)
        holder.claim()
        if running:
            held.lease.hold_session()  # a running process of the holder, renewing nothing
        time.sleep(wait)
        (tmp_path / claimant).mkdir()
        if claimant == "copy":
            shutil.copy2(holder_dir / "instance-id", tmp_path / "copy" / "instance-id")
        seen = theirs.lease.current()
        assert seen.running == running and seen.overdue == (row != "fresh") and seen.live == (running or row != "expired")
        mine = WriterLease(theirs, tmp_path / claimant, 60)
        if running or row == "fresh":
            with pytest.raises(WriterBusy) as caught:
                mine.claim()
            assert "another writer holds this database" in str(caught.value)
            assert ("a copy of this folder" in str(caught.value)) == (claimant == "copy")
            assert theirs.lease.current().where == seen.where  # nothing changed
        else:
            mine.claim()
            assert theirs.lease.current().where == location(tmp_path / claimant)
    finally:
        held.lease.drop_session()
        held.close()
        theirs.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_write_transaction_stops_at_its_next_statement_once_the_fence_is_set(request, tmp_path, kind):
    """`Store.fence` (set by the writer lease once another writer took over): a transaction
    open when it is set stops at its next statement with WriterFenced and commits nothing; the
    next one stops before its first; reads go on."""
    import threading

    from feeds.store import WriterFenced

    index = _database(request, kind, tmp_path, "fence")
    store = Store(index)
    try:
        before = store.version()
        store.fence = threading.Event()
        with pytest.raises(WriterFenced):
            with store.write() as tx:
                tx.set_meta("fence-test", "1")
                store.fence.set()  # the renewal thread found the lease taken over
                tx.set_meta("fence-test", "2")
        with pytest.raises(WriterFenced):
            with store.write() as tx:
                pass
        assert store.get_meta("fence-test") is None and store.version() == before
    finally:
        store.close()
