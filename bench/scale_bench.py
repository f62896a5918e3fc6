"""Measured scaling (issue 15 part 5): 1, 2 and 4 `topicfeed serve` processes on one PostgreSQL
behind nginx (no proxy cache), on this machine's cores.

A corpus-derived tree (bench/corpus_tree.py) is imported into a private PostgreSQL cluster once
(bench/pgcluster.py). Four `serve` processes start, each with its own port and instance folder
holding a copy of one keys.json and the same database URL; the first is the writer (its content
roots include a writable folder for curator writes), the others get an empty content root so they
do not re-sync the tree at start. nginx balances over the first 1, 2 or 4 of them (round robin,
keep-alive to the apps, ``proxy_cache`` off), and wrk (-t2 -c32) measures:

- cold feeds: every request a distinct ``/feeds/topics/<slug>.atom?min_heat=-N`` (a filter that
  keeps every entry but is its own render-cache key), spread over the topics with >= 50 entries;
- API lookups: ``/api/v1/lookup?prefix=...`` of known articles with a paired client's bearer
  token (signed answers), distinct URLs (prefix lengths 8-64 over thousands of articles).

For each run: requests/s, p50, errors, and the CPU seconds (``/proc/PID/stat``, whole process
trees) of every app process, of PostgreSQL (postmaster and backends), of nginx and of wrk. Then,
with all four up: curator write on the writer -> visible in a reader's topic feed, polled every
10 ms (p50/p99 over ``--writes`` writes).

Usage: python bench/scale_bench.py [--articles N] [--procs 1,2,4] [--seconds S] [--writes W]
       [--server waitress] [--fresh]   (needs Debian's postgresql, nginx-light and wrk)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout, not the installed one

from common import OUT, machine, real_corpus, record, stop_process, tree_pss_mb  # noqa: E402
from pgcluster import REPO, cli_env, free_port, imported_cluster, proc_cpu_seconds, write_instance  # noqa: E402

BASE_URL = "https://feeds.example.net"  # one public base URL for every process
COLD_LUA = """
counter = 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
slugs = {%(slugs)s}
n = 0
function init(args) first = tonumber(args[1]) + tid * 40000 end
function request()
  n = n + 1
  return wrk.format("GET", "/feeds/topics/" .. slugs[(n %% #slugs) + 1] .. ".atom?min_heat=-" .. (first + n))
end
"""
LOOKUP_LUA = """
counter = 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
hashes = {%(hashes)s}
n = 0
function init(args) first = tonumber(args[1]) + tid * 7919 end
function request()
  n = n + 1
  local i = first + n
  local h = hashes[(i %% #hashes) + 1]
  return wrk.format("GET", "/api/v1/lookup?prefix=" .. string.sub(h, 1, 8 + (math.floor(i / #hashes) %% 57)),
                    {["Authorization"] = "Bearer %(token)s"})
end
"""
NGINX = """worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    upstream apps {{ {servers} keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://apps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


def wait_up(url: str, proc: subprocess.Popen, what: str, timeout: float = 600) -> None:
    """Poll ``url`` until it answers (any HTTP status); a start-up that ends or hangs is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} during start-up")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


class App:
    """One ``topicfeed serve`` process with its own instance folder and port."""

    def __init__(self, folder: Path, base: Path, settings: dict[str, object], server: str) -> None:
        self.folder = write_instance(folder, base, {"public_base_url": BASE_URL, **settings})
        self.port = free_port()
        self.log = open(folder / "serve.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--instance", str(folder), "--port",
                                      str(self.port), "--server", server], env=cli_env(), cwd=REPO,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class Nginx:
    """A private nginx balancing over ``apps`` without a cache."""

    def __init__(self, folder: Path, apps: list[App]) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.port = free_port()
        servers = " ".join(f"server 127.0.0.1:{a.port};" for a in apps)
        (folder / "nginx.conf").write_text(NGINX.format(dir=folder, port=self.port, servers=servers))
        self.proc = subprocess.Popen(["nginx", "-c", str(folder / "nginx.conf"), "-p", str(folder), "-e",
                                      str(folder / "error.log"), "-g", "daemon off; user root;"])
        self.url = f"http://127.0.0.1:{self.port}"
        wait_up(self.url + "/healthz", self.proc, "nginx", 30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def wrk(url: str, script: Path, seconds: int, offset: int) -> dict[str, float]:
    """requests/s, p50 ms, failed requests (non-2xx/3xx + socket errors) and wrk's own CPU s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script),
                          url, "--", str(offset)], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": float(p50.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)] if p50 else float("nan"),
            "failed": sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
            + (sum(int(n) for n in errors.groups()) if errors else 0),
            "wrk_cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}


def get_json(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def known_hashes(base: Path, count: int) -> list[str]:
    """Full URL hashes (hex SHA-256 of the normalised URL, what the extension's prefixes come
    from) of ``count`` published articles, read through the store's own API."""
    code = ("import json, pathlib, random, sys\n"
            "from server import create_app, get_store\n"
            "from feeds.urlnorm import url_hash\n"
            "store = get_store(create_app({}, pathlib.Path(sys.argv[1])))\n"
            "rows = [r for r in store.iter_index_rows() if r.published and not r.duplicate_of]\n"
            "rows = random.Random(1).sample(rows, min(len(rows), int(sys.argv[2])))\n"
            "print(json.dumps([url_hash(r.norm_url) for r in rows]))\n")
    done = subprocess.run([sys.executable, "-c", code, str(base), str(count)], env=cli_env(), cwd=REPO,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli_output(instance: Path, *args: str) -> str:
    """stdout of ``topicfeed ARGS --instance INSTANCE``; its stderr in the error when it fails."""
    done = subprocess.run([sys.executable, "-m", "server", *args, "--instance", str(instance)], env=cli_env(),
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"topicfeed {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def measure_run(nginx: Nginx, apps: list[App], pg_pid: int, script: Path, seconds: int, offset: int) -> dict:
    """One wrk run through nginx with the CPU seconds each process tree used meanwhile."""
    pids = {"pg": pg_pid, "nginx": nginx.proc.pid, **{f"app{i + 1}": a.proc.pid for i, a in enumerate(apps)}}
    before = {k: proc_cpu_seconds(p) for k, p in pids.items()}
    result = wrk(nginx.url, script, seconds, offset)
    result["cpu"] = {k: proc_cpu_seconds(p) - before[k] for k, p in pids.items()}
    result["load"] = float(open("/proc/loadavg").read().split()[0])
    return result


def write_visibility(writer: App, readers: list[App], admin: str, slug: str, topic: str,
                     writes: int) -> list[tuple[float, float]]:
    """Per curator write sent to the writer: (seconds until its 201, seconds until a reader's
    topic feed lists it), both from the moment the request is sent."""
    delays = []
    stamp = int(time.time())
    for n in range(writes):
        reader = readers[n % len(readers)]
        ident = f"scale-bench-{stamp}-{n}"
        body = json.dumps({"id": ident, "title": f"Scale benchmark write {n}", "topics": [topic],
                           "publishedDateTime": f"2035-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
                           "webUrl": f"https://example.org/{ident}"}).encode()
        req = urllib.request.Request(writer.url + "/api/v1/articles", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
        start = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 201:
                raise RuntimeError(f"curator write answered {resp.status}")
        answered = time.perf_counter() - start
        while True:
            with urllib.request.urlopen(f"{reader.url}/feeds/topics/{slug}.atom", timeout=30) as resp:
                if ident.encode() in resp.read():
                    break
            if time.perf_counter() - start > 60:
                raise RuntimeError(f"{ident} not visible on {reader.url} after 60 s")
            time.sleep(0.01)
        delays.append((answered, time.perf_counter() - start))
        delete = urllib.request.Request(f"{writer.url}/api/v1/articles/{ident}", method="DELETE",
                                        headers={"Authorization": f"Bearer {admin}"})
        urllib.request.urlopen(delete, timeout=30).read()
    return delays


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100000)
    parser.add_argument("--procs", default="1,2,4", help="numbers of app processes to measure, comma-separated")
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration per run")
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--server", default="waitress", help="`serve --server` of every app process")
    parser.add_argument("--fresh", action="store_true", help="new cluster and import (else reuse bench/out/scale-N)")
    args = parser.parse_args()
    procs = [int(p) for p in args.procs.split(",")]
    out = OUT / f"scale-{args.articles}"
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    cluster, base, imported = imported_cluster(out, args.articles, real_corpus(args.articles))
    apps: list[App] = []
    nginx = None
    try:
        url = cluster.url("topicfeed")
        writable, empty = out / "writable", out / "empty-root"
        for folder in (writable, empty):
            folder.mkdir(exist_ok=True)
        started = time.perf_counter()
        apps.append(App(out / "app1", base, {"database_url": url, "content_dirs": [str(real_corpus(args.articles)),
                                                                                      str(writable)]}, args.server))
        # its start re-syncs the tree (readers do not): allow ~2 ms per article on a loaded machine
        wait_up(apps[0].url + "/healthz", apps[0].proc, "writer", 600 + args.articles / 500)
        writer_start = time.perf_counter() - started
        for i in range(2, max(procs) + 1):
            apps.append(App(out / f"app{i}", base, {"database_url": url, "content_dirs": [str(empty)]}, args.server))
        for app in apps[1:]:
            wait_up(app.url + "/healthz", app.proc, f"reader {app.folder.name}")
        client = json.loads(cli_output(base, "clients", "add", "scale-bench", "--json", "--server-url", BASE_URL))
        token, admin = client["token"], cli_output(base, "admin-token")
        topics = get_json(apps[-1].url + "/api/v1/topics", token)["value"]
        slugs = [t["slug"] for t in topics if t["count"] >= 50] or [t["slug"] for t in topics]
        hashes = known_hashes(base, 5000)
        sample = random.Random(2).sample(hashes, min(20, len(hashes)))
        found = sum(1 for h in sample if get_json(f"{apps[-1].url}/api/v1/lookup?prefix={h[:12]}", token)["value"])
        if found != len(sample):
            raise RuntimeError(f"only {found} of {len(sample)} known articles found by lookup")
        scripts = {"cold feed": out / "cold.lua", "lookup": out / "lookup.lua"}
        scripts["cold feed"].write_text(COLD_LUA % {"slugs": ", ".join(json.dumps(s) for s in slugs)})
        scripts["lookup"].write_text(LOOKUP_LUA % {"hashes": ", ".join(json.dumps(h) for h in hashes), "token": token})
        rows = []
        # distinct URLs across runs of this script too; min_heat must stay a 32-bit integer
        offset = 1_000_000 + int(time.time()) % 1000 * 1_000_000
        for count in procs:
            nginx = Nginx(out / "nginx", apps[:count])
            for kind, script in scripts.items():
                offset += 100_000  # > 2 wrk threads x 40,000 requests
                result = measure_run(nginx, apps[:count], cluster.postmaster_pid(), script, args.seconds, offset)
                rows.append({"procs": count, "kind": kind, **result})
                print(json.dumps(rows[-1]), flush=True)
            nginx.stop()
            nginx = None
        pss = [tree_pss_mb(app.proc.pid) for app in apps]  # after serving: caches filled, pools open
        topic = next(t for t in topics if t["slug"] == slugs[0])
        before = proc_cpu_seconds(apps[0].proc.pid), proc_cpu_seconds(cluster.postmaster_pid())
        delays = write_visibility(apps[0], apps[1:] or apps, admin, topic["slug"], topic["name"], args.writes)
        write_cpu = (proc_cpu_seconds(apps[0].proc.pid) - before[0], proc_cpu_seconds(cluster.postmaster_pid()) - before[1])
    finally:
        if nginx:
            nginx.stop()
        for app in apps:
            app.stop()
        cluster.stop()
    report(args, imported, writer_start, rows, delays, write_cpu, pss, len(slugs))


def report(args: argparse.Namespace, imported: dict, writer_start: float, rows: list[dict],
           delays: list[tuple[float, float]], write_cpu: tuple[float, float], pss: list[float], topics: int) -> None:
    """Append the section to RESULTS.md."""
    lines = ["| processes | requests | req/s | p50 | failed | CPU s: apps (each) | PostgreSQL | nginx | wrk | "
             "app CPU ms / request | PG CPU ms / request | PG share of the CPU | cores we got | req/s if 2 cores were ours "
             "| load (1 min) |", "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cpu = r["cpu"]
        app_cpu = [cpu[k] for k in sorted(cpu) if k.startswith("app")]
        n = max(r["requests"], 1)
        total = sum(app_cpu) + cpu["pg"] + cpu["nginx"] + r["wrk_cpu"]  # every process of the setup, wrk included
        lines.append(f"| {r['procs']} | {r['kind']} | {r['rps']:,.0f} | {r['p50']:.1f} ms | {r['failed']} | "
                     f"{sum(app_cpu):.1f} ({', '.join(f'{c:.1f}' for c in app_cpu)}) | {cpu['pg']:.1f} | "
                     f"{cpu['nginx']:.1f} | {r['wrk_cpu']:.1f} | {sum(app_cpu) / n * 1000:.1f} | "
                     f"{cpu['pg'] / n * 1000:.1f} | {cpu['pg'] / total:.0%} | {total / args.seconds:.2f} | "
                     f"{2 * n / total:,.0f} | {r['load']:.1f} |")
    for kind in ("cold feed", "lookup"):
        one = next((r for r in rows if r["kind"] == kind), None)  # the fewest processes: runs go in --procs order
        if one:
            lines.append("")
            lines.append(f"{kind}: throughput relative to {one['procs']} process(es): " + ", ".join(
                f"{r['procs']} -> {r['rps'] / one['rps']:.2f}x" for r in rows if r["kind"] == kind))
    acks, seen = [d[0] for d in delays], [d[1] for d in delays]
    lines += ["", f"Curator write (POST /api/v1/articles) sent to the writer -> visible in a reader's topic feed (another "
              f"process, polled every 10 ms), {len(delays)} writes, all processes idle otherwise: write answered 201 after "
              f"p50 {percentile(acks, 0.5) * 1000:.0f} ms (p99 {percentile(acks, 0.99) * 1000:.0f}); visible on the reader "
              f"after p50 {percentile(seen, 0.5) * 1000:.0f} ms, p99 {percentile(seen, 0.99) * 1000:.0f} ms from sending; "
              f"after the 201: p50 {statistics.median(b - a for a, b in delays) * 1000:.0f} ms, max "
              f"{max(b - a for a, b in delays) * 1000:.0f} ms (version_ttl 1.0 s, the default). CPU per write (its POST "
              f"and the DELETE that undoes it): writer {write_cpu[0] / len(delays) * 1000:.0f} ms, PostgreSQL "
              f"{write_cpu[1] / len(delays) * 1000:.0f} ms.",
              "", f"Memory of each app process (PSS, MB) after the runs: {', '.join(f'{m:.0f}' for m in pss)} "
              f"(render_cache_mb 32 each).",
              "", f"Setup: {args.articles:,} corpus-derived articles imported into PostgreSQL 15 (fsync off) by `topicfeed "
              f"import` in {imported['seconds']:.0f} s wall ({args.articles / imported['seconds']:,.0f} records/s; import tree "
              f"{imported['cpu']:.0f} CPU-s, PostgreSQL {imported['pg_cpu']:.0f} CPU-s; load {imported['load']:.1f}). "
              f"Writer start (re-sync of the tree): {writer_start:.0f} s. Apps: `serve --server {args.server}` (8 threads each), "
              f"own instance folder and port, one keys.json, nginx (2 workers, round robin, keep-alive, no cache) in front; "
              f"wrk -t2 -c32 -d{args.seconds}s through nginx; everything on these {os.cpu_count()} cores. Cold feeds: distinct "
              f"`?min_heat=-N` over {topics} topics with >= 50 entries (50-entry Atom, always a render-cache miss). Lookups: "
              "paired client's bearer token, 8-64 hex prefixes of 5,000 known articles (hits, signed answers). "
              "Cores we got: CPU seconds of all our processes (apps, PostgreSQL, nginx, wrk) per second of the run; "
              "req/s if 2 cores were ours: requests / those CPU seconds x 2 (what the same work per request would give on "
              "two idle cores). "
              f"CPU s: utime+stime of each process tree from /proc over the run (the machine is shared: {machine()})."]
    record(f"Scale-out: 1/2/4 app processes on PostgreSQL, {args.articles:,} articles (bench/scale_bench.py)", lines)


if __name__ == "__main__":
    main()
