"""WebSub hub: time from a curator write to the new document arriving at subscribers, with 1, 100
and 1,000 subscriptions, and what deliveries do to concurrent feed request latency.

A real ``topicfeed serve`` (its background hub worker) on a 300-article demo index; loopback
subscribers (one HTTP server, one callback path per subscription) spread over every topic feed
in all three formats plus ``all``; 100 curator writes one after another, each to one topic. A
write's delay is measured per delivery that carries the new article (from sending the write to
the POST arriving). Meanwhile a reader thread polls a feed and records its latency, compared
with the same poll before the writes start.

    PYTHONPATH=. python bench/websub_bench.py [--writes 100] [--subscriptions 1 100 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import corpus, record

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from feeds.demo import TOPICS  # noqa: E402
from feeds.importer import sync  # noqa: E402
from feeds.store import Store  # noqa: E402
from server import create_app, get_store  # noqa: E402
from server.instance import load_keys  # noqa: E402
from server.signing import ADMIN_TOKEN, sign  # noqa: E402
from tests.websub_subscriber import Subscriber  # noqa: E402

BASE = "http://feeds.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def topic_urls() -> list[str]:
    feeds = ["all"] + [f"topics/{slug}" for slug, *_ in TOPICS]
    return [f"{BASE}/feeds/{feed}.{ext}" for feed in feeds for ext in ("atom", "rss", "json")]


def run(count: int, writes: int, work: Path) -> dict[str, float]:
    instance, content = work / f"instance-{count}", work / f"content-{count}"
    instance.mkdir(parents=True)
    subprocess.run(["cp", "-r", str(corpus(300)), str(content)], check=True)
    (instance / "config.toml").write_text(
        f'public_base_url = "{BASE}"\ncontent_dirs = ["{content}"]\nwebsub_allow_private = true\n'
        f"websub_poll_seconds = 0.05\nwebsub_max_per_host = 100000\nwebsub_max_subscriptions = 100000\n")
    app = create_app({}, instance)
    sync(get_store(app), [content])
    get_store(app).close()

    subscriber = Subscriber()
    urls = topic_urls()
    store = Store(f"sqlite:///{instance / 'topicfeed.db'}")
    topic_of: dict[str, str] = {}
    for n in range(count):  # subscriptions are stored directly: the figure is distribution, not verification
        topic = urls[n % len(urls)]
        topic_of[f"/s{n}"] = topic
        store.websub.activate(subscriber.url(f"/s{n}"), topic, "127.0.0.1", None, 86400, 100000, 100000)

    port = free_port()
    log = (work / f"serve-{count}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--instance", str(instance), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    while any(store.websub.topic_doc(t) is None for t in set(topic_of.values())):
        time.sleep(0.1)  # the worker's first look records what subscribers have now

    reader_ms: list[tuple[float, float]] = []  # (time, latency ms)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            start = time.monotonic()
            urllib.request.urlopen(url + "/feeds/topics/ai.atom?limit=20", timeout=30).read()
            reader_ms.append((start, (time.monotonic() - start) * 1000))
            time.sleep(0.02)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(5)  # idle reader latency first
    writes_started = time.monotonic()
    token = sign({"admin": True, "nonce": "bench"}, ADMIN_TOKEN, load_keys(instance))
    delays: list[float] = []
    missing = seen = 0
    for n in range(writes):
        slug, name, *_ = TOPICS[1 + n % (len(TOPICS) - 1)]
        title = f"Bench write {n} about {name}"
        # each write is the newest article, so it is in every feed it belongs to
        published = f"2026-06-01T{n // 60:02d}:{n % 60:02d}:00Z"
        fields = {"title": title, "excerpt": "Written by the WebSub benchmark.", "publishedDateTime": published,
                  "webUrl": f"https://www.wired.com/bench/{count}/{n}/", "type": "article", "quality": 90, "heat": 50,
                  "provider": {"name": "WIRED", "domain": "wired.com"}, "topics": [name]}
        expect = {p for p, t in topic_of.items() if f"/feeds/topics/{slug}." in t or "/feeds/all." in t}
        start = time.monotonic()
        req = urllib.request.Request(url + "/api/v1/articles", data=json.dumps(fields).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=60).read()
        needle = title.encode()
        deadline = time.monotonic() + 60
        got: dict[str, float] = {}
        while len(got) < len(expect) and time.monotonic() < deadline:
            with subscriber.lock:  # only what arrived since the last look: the subscriber must stay responsive
                fresh, seen = subscriber.received[seen:], len(subscriber.received)
            for r in fresh:
                if r.method == "POST" and r.path in expect and r.path not in got and needle in r.body:
                    got[r.path] = r.at
            time.sleep(0.01)
        missing += len(expect) - len(got)
        delays += [(at - start) * 1000 for at in got.values()]
    stop.set()
    thread.join()
    proc.terminate()
    proc.wait(10)
    store.close()
    subscriber.close()
    idle = [ms for at, ms in reader_ms if at < writes_started]
    busy = [ms for at, ms in reader_ms if at >= writes_started]
    return {"deliveries": len(delays), "missing": missing, "p50": pct(delays, 0.5), "p99": pct(delays, 0.99),
            "idle50": statistics.median(idle), "idle99": pct(idle, 0.99),
            "busy50": statistics.median(busy), "busy99": pct(busy, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--subscriptions", type=int, nargs="+", default=[1, 100, 1000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.subscriptions:
            r = run(count, args.writes, Path(tmp))
            rows.append(f"| {count} | {r['deliveries']} | {r['missing']} | {r['p50']:.0f} ms | {r['p99']:.0f} ms | "
                        f"{r['idle50']:.1f} / {r['idle99']:.1f} ms | {r['busy50']:.1f} / {r['busy99']:.1f} ms |")
            print(rows[-1], flush=True)
    record("WebSub: curator write to delivery (bench/websub_bench.py)", [
        "| subscriptions | deliveries measured | not arrived in 60 s | write → delivery p50 | p99 | "
        "reader p50 / p99, no deliveries | reader p50 / p99, during deliveries |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *rows, "",
        f"{args.writes} curator writes one after another over HTTP, each to one topic; subscriptions spread over "
        "the `all` and topic feeds in three formats, so a write changes 6 of 27 topic URLs. The delay runs from "
        "sending the write to the POST arriving at a loopback subscriber, per delivery; it includes the worker's "
        "0.05 s poll for the store version and re-rendering every subscribed topic URL. The reader polls "
        "`/feeds/topics/ai.atom?limit=20` every 20 ms on the same server (8 waitress threads).",
    ])


if __name__ == "__main__":
    main()
