"""A private PostgreSQL cluster for benchmarks (Debian's postgresql package, no systemd; the
recipe of /work/shared/TESTING.md and tests/postgres.py).

Unlike the tests' cluster, its data folder is kept under bench/out between runs, so a large tree
is imported into it once (an import of 100k articles takes minutes); ``--fresh`` in the scripts
removes it. The server always runs as the ``postgres`` user (initdb refuses root) and is reached
over TCP on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.postgres import pg_bin


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A cluster in ``data`` (created on first use), started on a free port until ``stop()``."""

    def __init__(self, data: Path) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise SystemExit("PostgreSQL server binaries not found (.ci/run installs Debian's postgresql)")
        self.bin, self.data, self.port = bindir, data, free_port()
        as_pg = ["su", "postgres", "-s", "/bin/sh", "-c"] if os.geteuid() == 0 else ["sh", "-c"]
        self._run = lambda cmd: subprocess.run(as_pg + [cmd], check=True, capture_output=True, text=True)
        if not (data / "PG_VERSION").exists():
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            if os.geteuid() == 0:
                shutil.chown(data, "postgres")
            self._run(f"{bindir}/initdb -D {data} -U postgres -A trust -E UTF8 --no-sync")
        # fsync off as in the tests: a throwaway cluster; max_connections covers 4 apps' pools
        self._run(f"{bindir}/pg_ctl -D {data} -l {data}/log -w -o '-p {self.port} -k {data} "
                  f"-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' start")

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of database ``name``, created when missing."""
        made = subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               name], capture_output=True, text=True)
        if made.returncode and "already exists" not in made.stderr:
            raise RuntimeError(f"createdb {name}: {made.stderr.strip()}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def postmaster_pid(self) -> int:
        """The pid of the server's main process (its children are the backends)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        self._run(f"{self.bin}/pg_ctl -D {self.data} -m fast -w stop")


REPO = Path(__file__).resolve().parent.parent


def cli_env() -> dict[str, str]:
    """Environment for ``python -m server`` subprocesses: this checkout's code (not the installed
    console script, which points at another tree), no instance or settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOPICFEED_") or k == "TOPICFEED_SHARED"}
    return {**env, "PYTHONPATH": str(REPO)}


def write_instance(folder: Path, keys_from: Path | None, settings: dict[str, object]) -> Path:
    """An instance folder with ``settings`` as its config.toml; keys.json copied from
    ``keys_from`` (so every process signs and verifies with one key set) or made by ``init``."""
    folder.mkdir(parents=True, exist_ok=True)
    if keys_from is not None:
        shutil.copy2(keys_from / "keys.json", folder / "keys.json")
    else:
        subprocess.run([sys.executable, "-m", "server", "init", "--instance", str(folder)], env=cli_env(),
                       check=True, capture_output=True)
    # TOML strings and arrays of strings are JSON-compatible in what we write here
    (folder / "config.toml").write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    return folder


def proc_cpu_seconds(root: int) -> float:
    """user + system CPU seconds of ``root`` and every descendant, including descendants that
    already exited and were waited for (``/proc/PID/stat`` utime, stime, cutime, cstime)."""
    ticks, total, todo = os.sysconf("SC_CLK_TCK"), 0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # fields 14-17 of proc(5), after pid and comm
            for task in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except (OSError, ValueError):
            continue  # it exited while being read
    return total / ticks


def timed_import(instance: Path, content: Path, postgres_pid: int | None = None) -> dict[str, float | str]:
    """``topicfeed import`` of ``content`` in a fresh process: wall seconds, CPU seconds of the
    import's process tree and of the PostgreSQL server meanwhile, the peak PSS (MB) of the
    import's process tree (main + workers, sampled every 0.2 s; PostgreSQL's backends are not
    in it), the import's summary line and the 5-minute load average at the end."""
    from common import PeakSampler

    pg_before = proc_cpu_seconds(postgres_pid) if postgres_pid else 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "server", "import", "--instance", str(instance), str(content)],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = PeakSampler(proc.pid, 0.2)
    stdout, stderr = proc.communicate()
    peak = sampler.stop()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"import into {instance} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": wall, "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "pg_cpu": (proc_cpu_seconds(postgres_pid) - pg_before) if postgres_pid else 0.0,
            "pss_peak": peak, "summary": stdout.strip().splitlines()[0] if stdout.strip() else "",
            "load": float(open("/proc/loadavg").read().split()[1])}


def imported_cluster(out: Path, articles: int, content: Path) -> tuple[PgCluster, Path, dict]:
    """A running cluster under ``out`` whose database holds ``content`` (``articles`` records),
    imported by ``topicfeed import`` through the instance folder ``out/base`` the first time
    (the figures of that import are kept in ``out/imported.json`` and returned)."""
    cluster = PgCluster(out / "pgdata")
    url = cluster.url("topicfeed")
    base = out / "base"
    write_instance(base, None, {"database_url": url})  # init keeps an existing key set; the port is new each run
    figures_file = out / "imported.json"
    if not figures_file.exists():
        try:
            figures = timed_import(base, content, cluster.postmaster_pid())
        except BaseException:
            cluster.stop()
            raise
        if f"added {articles}," not in figures["summary"]:
            cluster.stop()
            raise RuntimeError(f"import of {articles} records said: {figures['summary']}")
        figures_file.write_text(json.dumps(figures))
    return cluster, base, json.loads(figures_file.read_text())
