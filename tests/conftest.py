"""Shared fixtures: the real app on a temporary instance, the shared corpus, a live server."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from feeds.importer import sync
from server import create_app, get_store

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOPICFEED_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
SITES = ["everyday-cc-ai", "everyday-cc-azure", "everyday-cc-powerapps", "everyday-cc-powerbi"]


def corpus_roots() -> list[Path]:
    """The four sites plus ``seed/`` (a later version of one record) as layered roots."""
    if not (CORPUS / "MANIFEST.tsv").exists():
        pytest.skip(f"shared corpus not found at {CORPUS} (set TOPICFEED_SHARED to the shared/ folder)")
    return [CORPUS / s for s in SITES] + [CORPUS / "seed"]


@pytest.fixture(autouse=True)
def _no_metrics_dir_leaks() -> Iterator[None]:
    """``serve`` run in this process (CliRunner) sets PROMETHEUS_MULTIPROC_DIR for its workers,
    even when it then fails on a bad setting; left set, a later test's /metrics would read that
    folder's files instead of this process's counters. Put the variable back as it was."""
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    yield
    if before is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = before


@pytest.fixture
def app(tmp_path: Path):
    return create_app({"API_ACCESS": "public", "VERSION_TTL": 0}, tmp_path / "instance")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def corpus_app(tmp_path_factory: pytest.TempPathFactory):
    """One app with the whole corpus imported, shared by a module's read-only tests."""
    roots = corpus_roots()
    app = create_app({"API_ACCESS": "public"}, tmp_path_factory.mktemp("corpus") / "instance")
    report = sync(get_store(app), roots)
    app.config["IMPORT_REPORT"] = report
    return app


@pytest.fixture
def corpus_client(corpus_app):
    return corpus_app.test_client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A throw-away PostgreSQL cluster (tests/postgres.py) shared by one test module."""
    from .postgres import Cluster, pg_bin

    if pg_bin() is None:
        pytest.skip("needs Debian's postgresql server binaries (.ci/run installs them)")
    c = Cluster(free_port())
    yield c
    c.stop()


class LiveServer:
    """``topicfeed serve`` in a subprocess: real HTTP on 127.0.0.1, its access log in a file."""

    def __init__(self, instance: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.instance = instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = instance.parent / f"serve-{self.port}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--instance", str(instance), "--port", str(self.port), *(args or [])],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 120  # generous: the machine may be busy, and workers build the app again
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def access_log(self) -> str:
        """The log so far, with every request answered before this call in it: access lines are
        written in batches (server/requestlog.py), so a marker request is sent and waited for."""
        marker = f"/healthz?log-mark={uuid.uuid4().hex}"
        urllib.request.urlopen(self.url + marker, timeout=30).read()
        deadline = time.monotonic() + 60
        while True:
            self.log.flush()
            text = self.log_path.read_text()
            if marker in text or time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def live_corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    roots = corpus_roots()
    instance = tmp_path_factory.mktemp("live") / "instance"
    app = create_app({}, instance)
    sync(get_store(app), roots)
    get_store(app).close()
    server = LiveServer(instance, {"TOPICFEED_API_ACCESS": "public"})
    yield server
    server.stop()


def copy_site(dest: Path, site: str = "everyday-cc-ai") -> Path:
    roots = corpus_roots()
    root = next(r for r in roots if r.name == site)
    shutil.copytree(root, dest)
    return dest


# CI runs every property test with a fixed seed (a failure there is reproducible, never flaky);
# locally each run explores new examples.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
