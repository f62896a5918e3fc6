"""Scale-out on this machine: one PostgreSQL, three `topicfeed serve` processes (one writer, two
readers with their own instance folders) behind nginx (deploy/nginx-scaleout.conf).

The first reader runs in its own mount namespace (`unshare -m`) with an empty tmpfs over the
writer's content folder, standing in for a second machine that cannot see the writer's disk.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from server import create_app
from server.instance import init_instance
from server.settings import load_settings
from server.signing import verify_object

from .conftest import REPO, copy_site, free_port
from .postgres import Cluster, pg_bin
from .websub_subscriber import Subscriber, wait_for

NGINX_CONF = REPO / "deploy" / "nginx-scaleout.conf"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # subprocesses run this checkout, not the installed one
ARTICLE = {"title": "Scale-out robots arrive", "publishedDateTime": "2031-02-03T04:05:06Z", "topics": ["Robots"],
           "webUrl": "https://example.org/scale-out-robots.html"}


def article(slug: str, title: str) -> dict:
    """A new article's fields with its own URL (an article with another's URL is a duplicate)."""
    return ARTICLE | {"id": slug, "title": title, "webUrl": f"https://example.org/{slug}.html"}
POOL_SIZE = 2  # small, so that the load below queues for connections


def _namespaces_work() -> bool:
    """Whether this machine lets us make a mount namespace with a tmpfs (root, or user namespaces)."""
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /mnt"],
                           capture_output=True)
    return probe.returncode == 0


def cli(instance: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args, "--instance", str(instance)],
                          capture_output=True, text=True, env=ENV, timeout=120)


def http(method: str, url: str, body: dict | None = None, token: str | None = None,
         headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers with lower-case names, body) of one request; never raises for an HTTP error status."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data else {}),
        **({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


@dataclass
class Process:
    """One `topicfeed serve` (optionally inside a mount namespace that hides ``hide``)."""

    name: str
    instance: Path
    port: int
    hide: Path | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Process:
        serve = [sys.executable, "-m", "server", "serve", "--instance", str(self.instance), "--port", str(self.port)]
        if self.hide is not None:
            # `exec` keeps one process: its pid is the server's, and nsenter can look at its mounts
            serve = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                     f'mount -t tmpfs none "{self.hide}" && exec "$@"', "sh", *serve]
        log = (self.instance.parent / f"{self.name}.log").open("a")
        # its own process group: the server may run its app in worker processes (granian)
        self.proc = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start: {(self.instance.parent / f'{self.name}.log').read_text()}")

    def kill(self) -> None:
        """kill -9 of every process it runs: no clean shutdown, as when a machine dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Topology:
    cluster: Cluster
    database: str
    content: Path
    writer: Process
    readers: list[Process]
    nginx_url: str
    admin: str
    namespaced: bool

    @property
    def processes(self) -> list[Process]:
        return [self.writer, *self.readers]


def configure(instance: Path, **settings: object) -> None:
    """``topicfeed init`` (in-process: the CLI's start-up costs seconds on a busy machine), then the
    settings every process of the deployment shares, in config.toml."""
    init_instance(instance)
    lines = [f"{name} = {json.dumps(value)}" for name, value in settings.items()]
    (instance / "config.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if pg_bin() is None or not Path(nginx).exists():
        pytest.skip("needs Debian's postgresql and nginx-light (.ci/run installs them)")
    base = tmp_path_factory.mktemp("scaleout")
    cluster = Cluster(free_port())
    processes: list[Process] = []
    nginx_proc = None
    try:
        database = cluster.create_db("scaleout")
        nginx_port = free_port()
        public = f"http://127.0.0.1:{nginx_port}"
        content = copy_site(base / "writer-disk" / "content")
        shared = {"database_url": database, "public_base_url": public, "db_pool_size": POOL_SIZE,
                  "websub_allow_private": True, "websub_poll_seconds": 0.2}
        writer = Process("writer", base / "writer" / "instance", free_port())
        configure(writer.instance, role="writer", content_dirs=[str(content)], **shared)
        imported = cli(writer.instance, "import")  # the import runs on the writer (it migrates the index too)
        assert imported.returncode == 0, imported.stderr
        namespaced = _namespaces_work()
        readers = [Process(f"reader{i}", base / f"reader{i}" / "instance", free_port(),
                           hide=content if namespaced and i == 1 else None) for i in (1, 2)]
        for reader in readers:
            configure(reader.instance, role="reader", writer_url=writer.url, **shared)
            # one key set for the deployment: the writer's keys.json, copied to every process
            shutil.copy2(writer.instance / "keys.json", reader.instance / "keys.json")
        for process in (writer, *readers):
            processes.append(process.start())
        conf = NGINX_CONF.read_text()
        for name, value in {"PREFIX": str(base), "PORT": str(nginx_port), "WRITER": f"127.0.0.1:{writer.port}",
                            "READER1": f"127.0.0.1:{readers[0].port}", "READER2": f"127.0.0.1:{readers[1].port}"}.items():
            conf = conf.replace("{" + name + "}", value)
        (base / "nginx.conf").write_text(conf)
        nginx_proc = subprocess.Popen([nginx, "-c", str(base / "nginx.conf"), "-p", str(base), "-e",
                                       str(base / "error.log"), "-g", "daemon off; user root;"])
        wait_for(lambda: _up(public + "/healthz"), what="nginx")
        admin = cli(readers[1].instance, "admin-token").stdout.strip()  # minted on a reader: the database and keys are shared
        yield Topology(cluster, database, content, writer, readers, public, admin, namespaced)
    finally:
        if nginx_proc is not None:
            nginx_proc.terminate()
            nginx_proc.wait(10)
        for process in processes:
            process.stop()
        cluster.stop()


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def feed_paths(topo: Topology) -> list[str]:
    """Every public feed as Atom, from the OPML lists, and the other formats of the main feed
    (formats share the entries: what could differ between processes is data and links)."""
    paths = []
    for opml in ("/feeds/index.opml", "/feeds/providers.opml"):
        status, _, body = http("GET", topo.writer.url + opml)
        assert status == 200
        for outline in ElementTree.fromstring(body).iter("outline"):
            if outline.get("xmlUrl"):
                paths.append(outline.get("xmlUrl").removeprefix(topo.nginx_url))
    atoms = sorted({p for p in paths if p.endswith(".atom")})
    assert len(atoms) > 5
    return atoms + ["/feeds/all.rss", "/feeds/all.json"]


def shows(process: Process, title: str) -> bool:
    return title.encode() in http("GET", process.url + "/feeds/all.atom")[2]


def test_curator_writes_through_nginx_reach_every_process_with_the_same_bytes(topology):
    topo = topology
    status, _, body = http("POST", topo.nginx_url + "/api/v1/articles", ARTICLE | {"id": "scale-robots"}, topo.admin)
    assert status == 201, body
    assert (topo.content / "_news" / "scale-robots.md").is_file()  # on the writer's disk
    for process in topo.processes:
        wait_for(lambda: shows(process, ARTICLE["title"]), timeout=30, what=f"the write on {process.name}")
    status, _, body = http("PUT", topo.nginx_url + "/api/v1/articles/scale-robots",
                           ARTICLE | {"title": "Scale-out robots, edited"}, topo.admin)
    assert status == 200, body
    for process in topo.processes:
        wait_for(lambda: shows(process, "Scale-out robots, edited"), timeout=30, what=f"the edit on {process.name}")
    paths = feed_paths(topo)
    for path in paths:
        bodies = {p.name: http("GET", p.url + path, headers={"Accept-Encoding": "identity"}) for p in topo.processes}
        assert {b[0] for b in bodies.values()} == {200}, path
        assert len({b[2] for b in bodies.values()}) == 1, f"{path} differs between processes"
        assert len({b[1]["etag"] for b in bodies.values()}) == 1, path


def render_misses(process: Process) -> float:
    """The process's render-cache misses so far (its /metrics, readable from loopback)."""
    text = http("GET", process.url + "/metrics")[2].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('topicfeed_render_cache_lookups_total{outcome="miss"}'))


def test_a_change_is_rendered_once_per_process_however_many_ask(topology):
    topo = topology
    status, _, body = http("POST", topo.nginx_url + "/api/v1/articles", article("scale-herd", "Herd of readers"),
                           topo.admin)
    assert status == 201, body
    for process in topo.processes:
        wait_for(lambda: shows(process, "Herd of readers"), timeout=30, what=f"the write on {process.name}")
    feed = "/feeds/topics/robots.json?limit=7"  # asked for the first time in this version
    for process in topo.processes:
        before = render_misses(process)
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: http("GET", process.url + feed), range(24)))
        assert {a[0] for a in answers} == {200} and len({a[2] for a in answers}) == 1
        assert b"Herd of readers" in answers[0][2]
        assert render_misses(process) - before == 1, process.name  # one render, the others waited for it


def test_a_write_sent_to_a_reader_is_refused_naming_the_writer_and_writes_nothing(topology):
    topo = topology
    for reader in topo.readers:
        status, headers, body = http("POST", reader.url + "/api/v1/articles", ARTICLE | {"id": "misdirected"}, topo.admin)
        assert status == 421 and headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["writer"] == topo.writer.url and topo.writer.url in problem["detail"]
        status, _, body = http("DELETE", reader.url + "/api/v1/articles/scale-robots", token=topo.admin)
        assert status == 421, body
        # refused before authentication: no token gets the same answer, not a 401
        assert http("PUT", reader.url + "/api/v1/articles/misdirected", ARTICLE)[0] == 421
        assert not list(reader.instance.parent.rglob("misdirected*"))
    assert http("GET", topo.writer.url + "/api/v1/articles/misdirected", token=topo.admin)[0] == 404
    assert http("GET", topo.writer.url + "/api/v1/articles/scale-robots", token=topo.admin)[0] == 200
    assert not (topo.content / "_news" / "misdirected.md").exists()
    if topo.namespaced:  # the first reader sees an empty tmpfs where the writer's content is
        seen = subprocess.run(["nsenter", "-t", str(topo.readers[0].proc.pid), "-m", "find", str(topo.content)],
                              capture_output=True, text=True, check=True).stdout.split()
        assert seen == [str(topo.content)]


def test_import_and_upgrade_on_a_reader_are_refused_in_one_line(topology):
    reader = topology.readers[1]
    for args in (("import", str(topology.content)), ("upgrade",), ("keys", "rotate")):
        done = cli(reader.instance, *args)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "reader" in done.stderr and topology.writer.url in done.stderr, done.stderr


def test_tokens_signatures_and_private_feeds_minted_on_one_process_work_on_every_other(topology):
    topo = topology
    made = cli(topo.readers[0].instance, "clients", "add", "scale-test", "--json")
    assert made.returncode == 0, made.stderr
    client = json.loads(made.stdout)
    answers = [http("GET", p.url + "/api/v1/topics", token=client["token"]) for p in topo.processes]
    assert [a[0] for a in answers] == [200, 200, 200]
    # one key set: every process's signature verifies with the client's secret; the objects are the
    # same apart from `secured`, whose itsdangerous timestamp is the second each process signed in
    objects = [json.loads(a[2]) for a in answers]
    assert all(verify_object(obj, client["secret"]) for obj in objects)
    assert len({json.dumps(unsecured(obj), sort_keys=True) for obj in objects}) == 1
    url = cli(topo.writer.instance, "clients", "feed-url", client["id"], "all").stdout.strip()
    assert url.startswith(topo.nginx_url + "/feeds/private/")
    feeds = [http("GET", p.url + url.removeprefix(topo.nginx_url)) for p in topo.processes]
    assert [f[0] for f in feeds] == [200, 200, 200] and len({f[2] for f in feeds}) == 1


def unsecured(value: object) -> object:
    """``value`` without any ``secured`` member, at any depth."""
    if isinstance(value, dict):
        return {k: unsecured(v) for k, v in value.items() if k != "secured"}
    if isinstance(value, list):
        return [unsecured(v) for v in value]
    return value


def test_a_change_is_delivered_once_by_three_websub_workers(topology):
    topo = topology
    subscriber = Subscriber()
    try:
        topic = f"{topo.nginx_url}/feeds/all.atom"
        form = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.callback": subscriber.url("/robots"),
                                       "hub.topic": topic}).encode()
        with urllib.request.urlopen(urllib.request.Request(topo.nginx_url + "/websub", data=form), timeout=15) as resp:
            assert resp.status == 202
        wait_for(lambda: subscriber.of("GET", "/robots", "subscribe"), what="verification of intent")
        time.sleep(1)  # the verification is answered; the subscription row lands right after
        status, _, body = http("POST", topo.nginx_url + "/api/v1/articles",
                               article("scale-websub", "Robots pushed once"), topo.admin)
        assert status == 201, body
        wait_for(lambda: subscriber.of("POST", "/robots"), what="the delivery")
        time.sleep(2)  # ten polls of every worker: a duplicate would have gone out by now
        deliveries = subscriber.of("POST", "/robots")
        assert len(deliveries) == 1 and b"Robots pushed once" in deliveries[0].body
    finally:
        subscriber.close()


def test_killing_a_reader_under_load_loses_no_request_and_a_restart_catches_up(topology):
    topo = topology
    victim = topo.readers[1]
    prefixes = ["%08x" % random.getrandbits(32) for _ in range(64)]
    errors: list[str] = []
    done = threading.Event()
    counts = {"lookup": 0, "feed": 0}

    def load(worker: int) -> None:
        rng = random.Random(worker)
        while not done.is_set():
            if rng.random() < 0.5:  # an uncached API lookup (private, no-store: always reaches a process)
                status, _, body = http("GET", f"{topo.nginx_url}/api/v1/lookup?prefix={rng.choice(prefixes)}",
                                       token=topo.admin)
                kind = "lookup"
            else:  # a feed with a query nginx has rarely seen, so most reach a process and render
                status, _, body = http("GET", f"{topo.nginx_url}/feeds/all.atom?limit={rng.randint(1, 100)}")
                kind = "feed"
            counts[kind] += 1
            if status != 200:
                errors.append(f"{kind} {status} {body[:200]!r}")

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(load, i) for i in range(6)]
        time.sleep(1.5)
        assert "/api/v1/lookup" in (victim.instance.parent / f"{victim.name}.log").read_text()  # it had its share
        victim.kill()
        # a write while the reader is down
        status, _, body = http("POST", topo.nginx_url + "/api/v1/articles",
                               article("scale-while-down", "Written while a reader was down"),
                               topo.admin)
        assert status == 201, body
        time.sleep(3)
        done.set()
        for future in futures:
            future.result()
    assert errors == [] and counts["lookup"] > 20 and counts["feed"] > 20, (errors[:5], counts)
    victim.start()
    # at once: its first answer already has the write it missed (no cache survives a restart)
    assert shows(victim, "Written while a reader was down")


def test_each_process_stays_within_its_connection_pool_under_load(topology):
    """One store pool per serve process (its request threads and its WebSub worker share it):
    while every process is loaded past its pool with uncached lookups and feeds, no process
    holds more than ``db_pool_size`` pooled connections, plus the writer's one lease session
    (server/writerlock.py), from pg_stat_activity."""
    import psycopg

    url = topology.database.replace("postgresql+psycopg://", "postgresql://")
    done = threading.Event()

    def load(process: Process, worker: int) -> None:
        rng = random.Random(worker)
        while not done.is_set():
            http("GET", f"{process.url}/api/v1/lookup?prefix={rng.getrandbits(32):08x}", token=topology.admin)
            http("GET", f"{process.url}/feeds/all.atom?limit={rng.randint(1, 100)}&q=a{rng.randint(1, 10**6)}")

    pooled: dict[str, int] = {}
    sessions: dict[str, int] = {}
    with ThreadPoolExecutor(8 * len(topology.processes)) as pool, psycopg.connect(url, autocommit=True) as conn:
        futures = [pool.submit(load, p, i) for p in topology.processes for i in range(8)]
        try:
            for _ in range(30):
                held = dict(conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = 'scaleout' "
                    "AND pid <> pg_backend_pid() GROUP BY application_name").fetchall())
                for process in topology.processes:
                    # a `serve` process may run its app in worker processes (granian): per process
                    for pid in process_tree(process.proc.pid):
                        name = f"{process.name}/{pid}"
                        pooled[name] = max(pooled.get(name, 0), held.get(f"topicfeed/{pid}", 0))
                        sessions[name] = max(sessions.get(name, 0), held.get(f"topicfeed/{pid}-lease", 0))
                time.sleep(0.1)
        finally:
            done.set()
        for future in futures:
            future.result()
    assert max(pooled.values()) == POOL_SIZE, pooled  # the load did fill the pools: the bound below is tested
    assert all(count <= POOL_SIZE for count in pooled.values()), pooled
    assert sum(v for k, v in sessions.items() if k.startswith("writer/")) == 1, sessions
    assert sum(v for k, v in sessions.items() if not k.startswith("writer/")) == 0, sessions


def process_tree(root: int) -> set[int]:
    """``root`` and every process below it, from /proc/PID/stat (field 4 is the parent pid)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we listed /proc
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    return tree


def test_reader_settings_need_the_shared_index_base_url_and_writer(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    db = "postgresql+psycopg://u@127.0.0.1/db"
    cases = [({"ROLE": "primary"}, "'role' must be"),
             ({"ROLE": "reader", "DATABASE_URL": db, "WRITER_URL": "http://w"}, "'public_base_url' must be set"),
             ({"ROLE": "reader", "PUBLIC_BASE_URL": "http://f", "WRITER_URL": "http://w"}, "'database_url' must"),
             ({"ROLE": "reader", "PUBLIC_BASE_URL": "http://f", "DATABASE_URL": db}, "'writer_url' must be set"),
             ({"ROLE": "reader", "PUBLIC_BASE_URL": "http://f", "DATABASE_URL": db, "WRITER_URL": "w:1"},
              "'writer_url' must be an absolute")]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            load_settings(instance, overrides)


def test_a_reader_never_migrates_and_says_where_to(tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(RuntimeError, match=r"topicfeed upgrade` on the writer \(http://writer:8080\) first"):
        create_app({"ROLE": "reader", "DATABASE_URL": empty, "PUBLIC_BASE_URL": "http://f",
                    "WRITER_URL": "http://writer:8080"}, tmp_path / "instance")


def test_a_reader_takes_database_only_writes_and_leaves_unknown_routes_to_404(tmp_path):
    index = f"sqlite:///{tmp_path / 'shared.db'}"
    create_app({"DATABASE_URL": index}, tmp_path / "writer")  # the writer made (migrated) the index
    reader = create_app({"ROLE": "reader", "DATABASE_URL": index, "PUBLIC_BASE_URL": "http://feeds.test",
                         "WRITER_URL": "http://writer.test", "WEBSUB_ALLOW_PRIVATE": True}, tmp_path / "reader")
    client = reader.test_client()
    hub = client.post("/websub", data={"hub.mode": "subscribe", "hub.callback": "http://127.0.0.1:9/cb",
                                       "hub.topic": "http://feeds.test/feeds/all.atom"})
    assert hub.status_code == 202  # a queued row in the shared database: fine on any process
    assert client.post("/no-such-thing").status_code == 404
    assert client.post("/feeds/all.atom").status_code == 405
    refused = client.post("/api/v1/articles", json=ARTICLE)
    assert refused.status_code == 421 and refused.json["writer"] == "http://writer.test"
    assert "http://writer.test" in refused.json["detail"]
