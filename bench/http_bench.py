"""Warm (cached) and 304 throughput of a topic feed with wrk, against a bare Flask app serving
the same bytes under the same WSGI server, measured in the same run; server memory at 100k.

Usage: python bench/http_bench.py [--articles N] [--seconds S]   (needs Debian's wrk)
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

from common import BENCH, OUT, corpus, record, rss_mb

from feeds.importer import sync
from server import create_app, get_store

PATH = "/feeds/topics/robotics.atom"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, seconds: int, header: str | None = None) -> tuple[float, float]:
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url]
    if header:
        cmd[1:1] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)]
    return rps, float(p50.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=100000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    instance = OUT / f"render-instance-{args.articles}"
    app = create_app({"API_ACCESS": "public"}, instance)
    if get_store(app).stats()["articles"] != args.articles:
        sync(get_store(app), [corpus(args.articles)])
    get_store(app).close()

    port, bare_port = free_port(), free_port()
    env = {**os.environ, "TOPICFEED_API_ACCESS": "public"}
    log = open(OUT / "http-bench-server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--instance", str(instance), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}{PATH}"
        wait(url)
        with urllib.request.urlopen(url) as resp:
            body, etag = resp.read(), resp.headers["ETag"]
        (OUT / "bench-feed.atom").write_bytes(body)
        bare = subprocess.Popen([sys.executable, str(BENCH / "bare_app.py"), str(OUT / "bench-feed.atom"), str(bare_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            bare_url = f"http://127.0.0.1:{bare_port}/feed"
            wait(bare_url)
            rows = {
                "bare Flask, same bytes (200)": wrk(bare_url, args.seconds),
                "topicfeed warm (200, cached)": wrk(url, args.seconds),
                "topicfeed conditional (304)": wrk(url, args.seconds, f"If-None-Match: {etag}"),
            }
        finally:
            bare.terminate()
        memory = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
    base = rows["bare Flask, same bytes (200)"][0]
    lines = ["| server | req/s | p50 latency | vs bare Flask |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {rps:,.0f} | {p50:.2f} ms | {rps / base:.2f} |" for name, (rps, p50) in rows.items()]
    lines += ["", f"Feed: {PATH} ({len(body):,} bytes), store of {args.articles:,} articles. Both servers are waitress "
              f"with 8 threads; wrk -t2 -c32 -d{args.seconds}s on the same 2 cores. topicfeed logs every request.",
              f"Server RSS after the runs: {memory:.0f} MB (target <= 120 MB)."]
    record("HTTP throughput and server memory (bench/http_bench.py)", lines)


if __name__ == "__main__":
    main()
