"""HTTP servers side by side: topicfeed's warm feed and 304s, a bare Flask app and a raw WSGI
callable returning the same bytes, each under the same server; throughput while 200 slow
clients trickle headers; the server's process-tree PSS after serving every topic feed in three
formats.

Usage: python bench/server_bench.py [--instance DIR] [--seconds S] [--rounds N] [--servers a,b] [--cpus 0]
[--before TREE --before-label TEXT] (needs Debian's wrk). ``--before`` also runs topicfeed from another
source tree (e.g. ``git archive main server feeds | tar -x -C TREE``) in the same turns, for a
before/after row under the same load. ``--cpus 0`` pins the servers to core 0 and wrk to the other core (the
one-core VPS). The instance defaults to the 100k corpus-derived import of bench/import_bench.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import BENCH, OUT, record, stop_process, tree_pss_mb

BASE = "https://feeds.example.net"  # public_base_url: the same bytes under every server, fast path on
SERVERS = {  # name: (server, threads, workers)
    "granian 1x8": ("granian", 8, 1), "granian 1x2": ("granian", 2, 1), "granian 2x4": ("granian", 4, 2),
    "waitress 1x8": ("waitress", 8, 1),
    "gunicorn gthread 1x8": ("gunicorn", 8, 1), "cheroot 1x8": ("cheroot", 8, 1),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process running ``target`` (``module:factory``)."""

    def __init__(self, spec: tuple[str, int, int], target: str, instance: Path, cpus: str | None,
                 source: Path = BENCH.parent) -> None:
        server, threads, workers = spec
        self.port = free_port()
        self.metrics = tempfile.mkdtemp(prefix="server-bench-metrics-")
        # as `topicfeed serve` runs: the access log on (into the log file), /metrics multiprocess
        env = {**os.environ, "PYTHONPATH": f"{source}:{BENCH}", "TOPICFEED_INSTANCE": str(instance),
               "TOPICFEED_PUBLIC_BASE_URL": BASE, "TOPICFEED_API_ACCESS": "public",
               "BENCH_FEED_BYTES": str(OUT / "bench-feed.atom"), "PROMETHEUS_MULTIPROC_DIR": self.metrics}
        code = "import sys; from server.serving import run; run(sys.argv[1], sys.argv[2], '127.0.0.1', *map(int, sys.argv[3:]))"
        cmd = [sys.executable, "-c", code, server, target, str(self.port), str(threads), str(workers)]
        if cpus:
            cmd = ["taskset", "-c", cpus, *cmd]
        self.log = open(OUT / f"server-bench-{server}.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 240  # start-up is slow on a loaded machine
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP error: the server is up
                    return
                time.sleep(0.5)
        raise RuntimeError(f"{server} {target} did not come up")

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.metrics, ignore_errors=True)


def wrk(url: str, seconds: int, cpus: str | None, header: str | None = None) -> tuple[float, float, int]:
    """(requests/s, p50 ms, failed requests: non-2xx/3xx plus socket errors) from wrk -t2 -c32."""
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "5s", "--latency", url]
    if header:
        cmd[1:1] = ["-H", header]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    ms = float(p50.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)] if p50 else float("nan")
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed += sum(int(n) for n in errors.groups()) if errors else 0
    return rps, ms, failed


class Trickle:
    """``count`` clients that send a request line and then one header line a second, never
    finishing: a server must keep answering others meanwhile."""

    def __init__(self, port: int, count: int = 200) -> None:
        self.socks: list[socket.socket] = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /feeds/all.atom HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.socks.append(s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for s in self.socks:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass  # the server gave up on it: allowed

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for s in self.socks:
            s.close()


def topic_paths(url: str) -> list[str]:
    with urllib.request.urlopen(url + "/api/v1/topics") as resp:
        data = json.load(resp)
    items = data["value"]
    return [f"/feeds/topics/{t['slug']}.{ext}" for t in items for ext in ("atom", "rss", "json")]


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants so far (``/proc/PID/stat``)."""
    tick, total, todo = os.sysconf("SC_CLK_TCK"), 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = open(f"/proc/{current}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in open(f"/proc/{current}/task/{task}/children").read().split()]
        except (OSError, ValueError):
            continue  # the process ended while being read
    return total / tick


def measure(name: str, spec: tuple[str, int, int], instance: Path, path: str, seconds: int, rounds: int,
            cpus: str | None, wrk_cpus: str | None, before: Path | None = None) -> dict[str, object]:
    """One server's row. topicfeed, the bare Flask app and the raw callable run at the same time
    and are measured in turns (``rounds`` times each, medians kept): on a shared machine the
    load moves between runs, so turns compare them under the same load. Requests per CPU-second
    of the server's process tree is the load-independent figure."""
    row: dict[str, object] = {"name": name}
    servers: dict[str, Server] = {}
    try:  # a server that does not come up stops the ones already started
        for key, target in (("app", "server.cli:wsgi_app"), ("bare", "wsgi_targets:bare_flask"), ("raw", "wsgi_targets:raw")):
            servers[key] = Server(spec, target, instance, cpus)
        if before:
            servers["before"] = Server(spec, "server.cli:wsgi_app", instance, cpus, before)
        app = servers["app"]
        with urllib.request.urlopen(app.url + path) as resp:
            body, etag = resp.read(), resp.headers["ETag"]
        feed = OUT / "bench-feed.atom"
        if feed.read_bytes() != body:
            raise RuntimeError(f"{name} served other bytes for {path}")
        row["bytes"] = len(body)
        turns = [("raw", servers["raw"], None), ("bare", servers["bare"], None), ("warm", app, None),
                 ("304", app, f"If-None-Match: {etag}")]
        if before:
            turns += [("warm-before", servers["before"], None), ("304-before", servers["before"], f"If-None-Match: {etag}")]
        for _, server, _ in turns[2:]:
            for _ in range(2):  # the app answers and the fast path records it, then replays it
                with urllib.request.urlopen(server.url + path) as resp:
                    if resp.read() != body:
                        raise RuntimeError(f"{name} served other bytes for {path} from {server.url}")
        runs: dict[str, list[tuple[float, float, int, float]]] = {k: [] for k, _, _ in turns}
        for _ in range(rounds):
            for key, server, header in turns:
                cpu = tree_cpu_s(server.proc.pid)
                rps, p50, failed = wrk(server.url + path, seconds, wrk_cpus, header)
                runs[key].append((rps, p50, failed, rps * seconds / max(tree_cpu_s(server.proc.pid) - cpu, 0.01)))
        for key, values in runs.items():
            rps = sorted(v[0] for v in values)[len(values) // 2]
            p50 = sorted(v[1] for v in values)[len(values) // 2]
            per_cpu = sorted(v[3] for v in values)[len(values) // 2]
            row[key] = (rps, p50, sum(v[2] for v in values), per_cpu)
        slow = Trickle(app.port)
        try:
            row["slow"] = wrk(app.url + path, seconds, wrk_cpus)
        finally:
            slow.stop()
        for p in topic_paths(app.url):
            urllib.request.urlopen(app.url + p).read()
        row["pss"] = tree_pss_mb(app.proc.pid)
    finally:
        for server in servers.values():
            server.stop()
    return row


def write_feed(instance: Path, path: str) -> None:
    """The feed's bytes, as topicfeed serves them, for the baselines to return (BENCH_FEED_BYTES)."""
    feed = OUT / "bench-feed.atom"
    server = Server(SERVERS["waitress 1x8"], "server.cli:wsgi_app", instance, None)
    try:
        with urllib.request.urlopen(server.url + path) as resp:
            feed.write_bytes(resp.read())
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instance", type=Path, default=OUT / "import-instance-100000")
    parser.add_argument("--path", default="/feeds/topics/ai.atom")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="turns of raw, bare, warm, 304 per server (medians)")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--cpus", default=None, help="pin servers to these CPUs (taskset), wrk to the others")
    parser.add_argument("--before", type=Path, default=None, help="another source tree of topicfeed, measured in the same turns")
    parser.add_argument("--before-label", default="before", help="its name in the table (e.g. the commit)")
    args = parser.parse_args()
    load_start = open("/proc/loadavg").read().split()[1]
    wrk_cpus = None
    if args.cpus:
        others = sorted(set(os.sched_getaffinity(0)) - {int(c) for c in args.cpus.split(",")})
        wrk_cpus = ",".join(map(str, others)) or args.cpus
    write_feed(args.instance, args.path)
    rows = [measure(n, SERVERS[n], args.instance, args.path, args.seconds, args.rounds, args.cpus, wrk_cpus, args.before)
            for n in args.servers.split(",")]
    reference = next((r["bare"] for r in rows if r["name"] == "waitress 1x8"), None)
    lines = ["| server (processes x threads) | raw WSGI req/s (per CPU-s) | bare Flask req/s (per CPU-s) | topicfeed warm "
             "req/s (per CPU-s) | warm / raw, same server: req/s (per CPU-s) | warm / bare Flask under waitress: req/s "
             "(per CPU-s) | 304 req/s (per CPU-s) | 304 / bare Flask under waitress: req/s (per CPU-s) | warm with 200 "
             "slow clients req/s (failed) | server PSS after every topic feed x 3 formats |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(figure: tuple) -> str:
        return f"{figure[0]:,.0f} ({figure[3]:,.0f})"

    def ratio(a: tuple, b: tuple) -> str:
        return f"{a[0] / b[0]:.2f} ({a[3] / b[3]:.2f})"

    for r in rows:
        ref = reference or r["bare"]
        lines.append(
            f"| {r['name']} | {cell(r['raw'])} | {cell(r['bare'])} | {cell(r['warm'])}, p50 {r['warm'][1]:.2f} ms | "
            f"{ratio(r['warm'], r['raw'])} | {ratio(r['warm'], ref)} | {cell(r['304'])} | {ratio(r['304'], ref)} | "
            f"{r['slow'][0]:,.0f} ({r['slow'][2]}) | {r['pss']:.0f} MB |")
        if "warm-before" in r:
            before = r["warm-before"]
            lines.append(
                f"| {r['name']}, {args.before_label} | (same run) | (same run) | {cell(before)}, p50 {before[1]:.2f} ms | "
                f"{ratio(before, r['raw'])} | {ratio(before, ref)} | {cell(r['304-before'])} | "
                f"{ratio(r['304-before'], ref)} | - | - |")
    where = f"servers on CPU {args.cpus}, wrk on {wrk_cpus}" if args.cpus else "servers and wrk share all cores"
    lines += ["", f"{args.path} ({rows[0]['bytes']:,} bytes, identical under every server) from {args.instance.name}, "
              f"public_base_url set (fast path on), access log on, /metrics in multiprocess mode. wrk -t2 -c32 "
              f"-d{args.seconds}s, {args.rounds} rounds taking turns (raw, bare, warm, 304; medians); {where}. "
              "In brackets: requests per CPU-second of the server's process tree, the figure the machine's other "
              f"load moves least. 5-minute load average at the start {load_start}, at the end "
              f"{open('/proc/loadavg').read().split()[1]} (the machine is shared: compare within one run). Targets: "
              "warm >= 5x and 304 >= 6x bare Flask under waitress, warm >= 0.8x raw WSGI under the same server, "
              "server memory <= 100 MB."]
    record(f"HTTP servers side by side, {where} (bench/server_bench.py)", lines)


if __name__ == "__main__":
    main()
