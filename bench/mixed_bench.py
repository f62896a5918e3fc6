"""Mixed load with curator writes (issue 11 part 3): 64 connections of feed polls (200s and
304s) and API lookups from wrk, plus curator writes at 0.5 % of the requests from a Python
writer, against `topicfeed serve` on a 100k-article instance; once with every write dropping the
whole render cache (main's behaviour: ``targeted_invalidation = false``) and once with targeted
invalidation, side by side in one run.

Reports: throughput (wrk requests/s), write latency (PUT answer time) p50/p99 under the load,
write → visible in its topic feed (from the PUT's answer until a poll of that topic feed shows
the new title) p50/p99, the server's CPU seconds per 1,000 requests, and the load average.

Usage: python bench/mixed_bench.py [--instance bench/out/import-instance-100000]
                                   [--corpus bench/out/corpus-100000] [--seconds 30] [--before DIR]
With ``--before DIR`` (a checkout of main, e.g. a ``git worktree``) both phases use targeted
invalidation and differ in the code serving them: DIR's, then this worktree's (the curator
write path of issue 11), recorded in a section of their own.
(needs Debian's wrk; the instance is copied once to bench/out/mixed-<its name>, never modified).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from pathlib import Path

from common import OUT, record

REPO = Path(__file__).resolve().parents[1]
CONNECTIONS = 64
WRITE_SHARE = 0.005
FEEDS = 24   # topic feeds the load polls (the largest topics), each in three formats
IDS = 12     # curator articles the writer cycles through (each write may move one between topics)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (``/proc``)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = open(f"/proc/{current}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in open(f"/proc/{current}/task/{task}/children").read().split()]
        except OSError:
            pass
    return total


def loadavg() -> str:
    return open("/proc/loadavg").read().split()[0]


class Server:
    """``topicfeed serve`` (the code of checkout ``code``) on ``instance`` on a free port, with
    ``env`` settings on top of this process's environment; its output goes to ``OUT/<name>.log``."""

    def __init__(self, instance: Path, env: dict[str, str], name: str, code: Path = REPO) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (OUT / f"{name}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--instance", str(instance),
                                      "--port", str(self.port)], env={**os.environ, "PYTHONPATH": str(code), **env},
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600  # serve reconciles 100k files first
        while time.monotonic() < deadline:
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"serve did not start: see {self.log.name}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request on a new connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers=headers)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def wrk_script(paths: list[str], prefixes: list[str]) -> Path:
    """wrk Lua: per request, 55 % a feed (200), 30 % the same with If-Modified-Since (304 unless
    the feed changed since the run started), 15 % an API lookup by URL-hash prefix."""
    since = formatdate(time.time(), usegmt=True)
    lua = f"""
local paths = {{{", ".join(json.dumps(p) for p in paths)}}}
local prefixes = {{{", ".join(json.dumps(p) for p in prefixes)}}}
request = function()
  local r = math.random()
  if r < 0.55 then
    return wrk.format("GET", paths[math.random(#paths)])
  elseif r < 0.85 then
    return wrk.format("GET", paths[math.random(#paths)], {{["If-Modified-Since"] = "{since}"}})
  end
  return wrk.format("GET", "/api/v1/lookup?prefix=" .. prefixes[math.random(#prefixes)])
end
"""
    path = OUT / "mixed.lua"
    path.write_text(lua)
    return path


def run_wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    result = {"rps": 0.0, "requests": 0.0, "errors": 0.0}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(line.split()[1])
        elif "requests in" in line:
            result["requests"] = float(line.split()[0])
        elif line.startswith("Non-2xx or 3xx responses:"):
            result["errors"] += float(line.split()[-1])
        elif line.startswith("Socket errors:"):
            result["errors"] += sum(float(p.split()[-1]) for p in line.split(":", 1)[1].split(","))
    return result


class Writer(threading.Thread):
    """Curator PUTs at ``rate`` per second, each followed by polls of its topic feed until the
    new title shows (what a reader would see)."""

    def __init__(self, server: Server, token: str, topics: list[tuple[str, str]], rate: float, tag: str) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.topics, self.interval, self.tag = server, token, topics, 1 / rate, tag
        self.latency: list[float] = []
        self.visible: list[float] = []
        self.floor: list[float] = []     # a cached GET of the same topic feed just before the write
        self.to_visible: list[int] = []  # polls until the title showed (1 = the first one did)
        self.failed = 0
        self.polls = 0
        self.stop = threading.Event()

    def run(self) -> None:
        rng, n = random.Random(5), 0
        while not self.stop.is_set():
            started = time.monotonic()
            n += 1
            name, slug = rng.choice(self.topics)
            title = f"Mixed bench {self.tag} {n}"
            # the floor: what any request of the mix waits under the load (queueing behind the
            # 64 connections, then a fast-path answer); a poll after the write costs at least this
            probe = time.monotonic()
            self.server.get(f"/feeds/topics/{slug}.atom")
            self.floor.append(time.monotonic() - probe)
            started = time.monotonic()
            body = {"title": title, "publishedDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "webUrl": f"https://bench.example/{self.tag}/{n % IDS}", "topics": [name],
                    "provider": {"name": "Bench", "domain": "bench.example"}}
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
            try:
                conn.request("PUT", f"/api/v1/articles/mixed-bench-{n % IDS}", body=json.dumps(body),
                             headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status in (200, 201)
            finally:
                conn.close()
            answered = time.monotonic()
            if not ok:
                self.failed += 1
            else:
                self.latency.append(answered - started)
                polls = 0
                while time.monotonic() - answered < 30:
                    self.polls += 1
                    polls += 1
                    if title.encode() in self.server.get(f"/feeds/topics/{slug}.atom")[2]:
                        self.visible.append(time.monotonic() - answered)
                        self.to_visible.append(polls)
                        break
                    time.sleep(0.005)
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def phase(instance: Path, targeted: bool, token: str, seconds: int, code: Path = REPO) -> dict[str, float]:
    server = Server(instance, {"TOPICFEED_TARGETED_INVALIDATION": str(targeted).lower()},
                    f"mixed-serve-{'targeted' if targeted else 'all'}", code)
    try:
        topics = json.loads(server.get("/api/v1/topics")[2])
        topics = topics["value"]  # a signed collection (server/api_objects.py)
        largest = sorted(topics, key=lambda t: -t.get("count", 0))[:FEEDS]
        paths = [f"/feeds/topics/{t['slug']}.{ext}" for t in largest for ext in ("atom", "rss", "json")]
        prefixes = [f"{random.Random(i).getrandbits(32):08x}" for i in range(200)]
        script = wrk_script(paths, prefixes)
        for path in paths:  # every feed cached once, as in steady operation
            server.get(path)
        warm = run_wrk(server.url, script, 5)  # the read rate sets the write rate (0.5 % of requests)
        writer = Writer(server, token, [(t["name"], t["slug"]) for t in largest], max(warm["rps"] * WRITE_SHARE, 0.2),
                        "targeted" if targeted else "all")
        load_before, cpu_before = loadavg(), cpu_seconds(server.proc.pid)
        writer.start()
        result = run_wrk(server.url, script, seconds)
        writer.stop.set()
        writer.join(60)
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        total = result["requests"] + len(writer.latency) + writer.failed + writer.polls
        return {**result, "writes": len(writer.latency), "write_failed": writer.failed,
                "write_share": (len(writer.latency) + writer.failed) / total * 100,
                "write_p50": pct(writer.latency, 0.5) * 1000, "write_p99": pct(writer.latency, 0.99) * 1000,
                "visible_p50": pct(writer.visible, 0.5) * 1000, "visible_p99": pct(writer.visible, 0.99) * 1000,
                "floor_p50": pct(writer.floor, 0.5) * 1000, "floor_p99": pct(writer.floor, 0.99) * 1000,
                "first_poll": sum(1 for n in writer.to_visible if n == 1) / max(len(writer.to_visible), 1) * 100,
                "little_ms": CONNECTIONS / max(result["rps"], 1e-9) * 1000,
                "cpu_per_1000": cpu / total * 1000, "load_before": float(load_before), "load_after": float(loadavg())}
    finally:
        server.stop()


def prepare(source: Path, corpus: Path, code: Path = REPO) -> tuple[Path, str]:
    """A copy of the imported instance whose content roots are the corpus (read only) and a
    writable root for the curator's files; returns (instance, admin token), minted by ``code``
    (the older code when comparing: the newer one may migrate the copy past what it knows)."""
    instance, writes = OUT / f"mixed-{source.name}", OUT / f"mixed-writes-{source.name}"
    if not (instance / "topicfeed.db").exists():
        shutil.copytree(source, instance, ignore=shutil.ignore_patterns("*.log"))
    writes.mkdir(exist_ok=True)
    (instance / "config.toml").write_text(
        f'content_dirs = ["{corpus}", "{writes}"]\npublic_base_url = "http://bench.example"\napi_access = "public"\n'
        'trusted_hosts = []\n')
    token = subprocess.run([sys.executable, "-m", "server", "admin-token", "--instance", str(instance)],
                           env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, check=True)
    return instance, token.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instance", type=Path, default=OUT / "import-instance-100000")
    parser.add_argument("--corpus", type=Path, default=OUT / "corpus-100000")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--before", type=Path, help="checkout whose code serves the first phase (see above)")
    args = parser.parse_args()
    instance, token = prepare(args.instance.resolve(), args.corpus.resolve(),
                              args.before.resolve() if args.before else REPO)
    if args.before:
        rows = {f"before ({args.before.name})": phase(instance, True, token, args.seconds, args.before.resolve()),
                "this branch": phase(instance, True, token, args.seconds)}
    else:
        rows = {"every write drops all (main)": phase(instance, False, token, args.seconds),
                "targeted invalidation": phase(instance, True, token, args.seconds)}
    before, after = rows.values()
    lines = ["| behaviour | req/s | failed | writes (share) | write p50 / p99 | write → visible p50 / p99 | "
             "cached GET under the load p50 / p99 | 64 conns / req/s | shown by the first poll | "
             "server CPU s / 1,000 req | load avg (start → end) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['errors'] + r['write_failed']:.0f} | {r['writes']:.0f} "
                     f"({r['write_share']:.2f} %) | {r['write_p50']:.0f} / {r['write_p99']:.0f} ms | "
                     f"{r['visible_p50']:.0f} / {r['visible_p99']:.0f} ms | "
                     f"{r['floor_p50']:.0f} / {r['floor_p99']:.0f} ms | {r['little_ms']:.0f} ms | {r['first_poll']:.0f} % | "
                     f"{r['cpu_per_1000']:.2f} | {r['load_before']:.1f} → {r['load_after']:.1f} |")
    lines += ["", f"Ratios {'this branch' if args.before else 'targeted'} / main: throughput {after['rps'] / max(before['rps'], 1):.2f}×, write p50 "
              f"{after['write_p50'] / max(before['write_p50'], 1e-9):.2f}×, visible p50 "
              f"{after['visible_p50'] / max(before['visible_p50'], 1e-9):.2f}×.",
              "", f"`topicfeed serve` (granian, 2 threads, one process, public_base_url set: fast path on) on a copy of "
              f"{args.instance.name}; wrk -t2 -c{CONNECTIONS} -d{args.seconds}s with a Lua mix of 55 % topic feeds (200), "
              f"30 % the same with If-Modified-Since (304), 15 % /api/v1/lookup; {FEEDS} topic feeds × 3 formats; a Python "
              f"writer PUTs articles at 0.5 % of the warm-up request rate (each write moves one of {IDS} articles into a "
              "random one of those topics, newest first) and polls that topic's Atom feed until the title shows. "
              "Both phases in one run, main's behaviour first (TOPICFEED_TARGETED_INVALIDATION=false); the machine is "
              "shared, so compare the rows and the CPU seconds rather than absolute rates."]
    if args.before:
        lines[-1] = lines[-1].replace("main's behaviour first (TOPICFEED_TARGETED_INVALIDATION=false)",
                                      f"both with targeted invalidation, {args.before}'s code first")
    section = "Mixed load with curator writes (bench/mixed_bench.py)"
    if args.before:  # a section of its own, next to the invalidation comparison
        section = f"Mixed load, write → visible before/after ({args.instance.name}, bench/mixed_bench.py --before)"
    record(section, lines)


if __name__ == "__main__":
    main()
