"""The small-VPS budget: `topicfeed serve` and a 100,000-article `topicfeed import` together in one
400 MB memory cgroup (what a 512 MB VPS leaves after the kernel and base system; cgroup v1, root,
recipe in ../shared/TESTING.md). Records the peak PSS of each process tree (server; import plus
its workers), the cgroup's peak and limit hits, whether anything was OOM-killed, whether the
server still answers afterwards, and the import's time. Bounded by --timeout.

    python bench/vps_budget.py [--articles 100000] [--limit-mb 400] [--timeout 1200]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import corpus, process_tree, record, tree_pss_mb  # noqa: E402

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
REPO = Path(__file__).resolve().parents[1]


def oom_kills(cg: Path) -> int:
    """OOM kills inside the cgroup (``oom_kill`` of memory.oom_control; kernels ≥ 4.13)."""
    for line in (cg / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--limit-mb", type=int, default=400)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds the import may run before it is stopped")
    args = parser.parse_args()
    if not (CGROUP_ROOT / "cgroup.procs").exists() or os.geteuid() != 0:
        sys.exit("needs root and the cgroup v1 memory controller at /sys/fs/cgroup/memory")

    content = corpus(args.articles)
    work = Path(tempfile.mkdtemp(prefix="vps-budget-"))
    instance = work / "instance"
    cg = CGROUP_ROOT / f"topicfeed-budget-{os.getpid()}"
    cg.mkdir()
    (cg / "memory.limit_in_bytes").write_text(str(args.limit_mb * 1024 * 1024))
    (cg / "memory.memsw.limit_in_bytes").write_text(str(args.limit_mb * 1024 * 1024)) if (cg / "memory.memsw.limit_in_bytes").exists() else None
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOPICFEED_INSTANCE": str(instance)}

    def in_cgroup() -> None:
        (cg / "cgroup.procs").write_text(str(os.getpid()))

    def topicfeed(*cli: str, log: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "server", *cli], env=env, cwd=work, preexec_fn=in_cgroup,
                                stdout=log.open("w"), stderr=subprocess.STDOUT)

    subprocess.run([sys.executable, "-m", "server", "init"], env=env, cwd=work, check=True, capture_output=True)
    port = 18000 + os.getpid() % 1000
    server = topicfeed("serve", "--port", str(port), log=work / "serve.log")
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            break
        except OSError:
            time.sleep(0.2)
    peaks = {"server": 0.0, "import": 0.0}
    polls = {"ok": 0, "failed": 0}
    started = time.monotonic()
    importer = topicfeed("import", str(content), log=work / "import.log")
    done = threading.Event()

    def sample() -> None:
        feed = url + "/feeds/all.atom"
        while not done.is_set():
            peaks["server"] = max(peaks["server"], tree_pss_mb(server.pid))
            peaks["import"] = max(peaks["import"], tree_pss_mb(importer.pid))
            try:  # a reader polling meanwhile: the server must keep answering
                urllib.request.urlopen(feed, timeout=10).read()
                polls["ok"] += 1
            except OSError:
                polls["failed"] += 1
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = importer.wait(args.timeout)
        outcome = "finished" if code == 0 else f"exit {code}" + (" (SIGKILL: OOM)" if code == -signal.SIGKILL else "")
    except subprocess.TimeoutExpired:
        outcome = f"stopped after the {args.timeout:.0f} s bound"
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    server_alive = server.poll() is None
    if server_alive:
        try:
            health = json.loads(urllib.request.urlopen(url + "/healthz", timeout=10).read())
        except OSError:
            health = {}
    else:
        health = {}
    serving = set(process_tree(server.pid))  # the server's own worker processes (granian) are not leftovers
    leftovers = [int(p) for p in (cg / "cgroup.procs").read_text().split() if int(p) not in serving]
    kills = oom_kills(cg)
    peak = int((cg / "memory.max_usage_in_bytes").read_text()) / 2**20
    failcnt = int((cg / "memory.failcnt").read_text())
    for pid in [server.pid, *leftovers]:  # only processes this script started (its cgroup's members)
        try:
            os.kill(pid, signal.SIGKILL if pid != server.pid else signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in (server, importer):
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    time.sleep(1)
    cg.rmdir()
    tail = (work / "import.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
    record(f"Small-VPS budget: serve + {args.articles:,}-article import in a {args.limit_mb} MB cgroup (bench/vps_budget.py)", [
        f"- import: {outcome} in {elapsed:.0f} s; last line: `{tail[0][:160]}`",
        f"- peak PSS: server {peaks['server']:.0f} MB, import (with its workers) {peaks['import']:.0f} MB "
        f"(sampled every 0.5 s)",
        f"- cgroup: peak usage {peak:.0f} MB of {args.limit_mb} MB, limit hit {failcnt} times, OOM kills {kills}",
        f"- server during the import: {polls['ok']} feed polls answered, {polls['failed']} failed; "
        f"{'alive' if server_alive else 'dead'} afterwards"
        + (f", /healthz: {health.get('articles', '?')} articles, last import {health.get('last_import', {}) and health['last_import']['result']}" if health else ""),
        f"- processes of the import left in the cgroup after it ended: {len(leftovers)} (killed by the script)",
    ])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
