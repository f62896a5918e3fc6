"""Cold render latency of a 50-entry topic feed (query + feedgen + HTTP layer, cache bypassed)
at 10k and 100k corpus-derived articles: the index must keep it flat as the store grows.

Usage: python bench/render_bench.py   (reuses bench/import_bench.py's instances, else imports)
"""
from __future__ import annotations

import statistics
import time

from common import OUT, real_corpus, record

from feeds.importer import sync
from server import create_app, get_store
from server.httpcache import RenderCache

ROUNDS = 200


def measure(n: int) -> dict[str, float]:
    instance = OUT / f"import-instance-{n}"
    app = create_app({"API_ACCESS": "public"}, instance)
    store = get_store(app)
    if store.stats()["articles"] != n:
        sync(store, [real_corpus(n)])
    client = app.test_client()
    out = {}
    app.extensions["topicfeed.cache"] = RenderCache(store, 0, 3600)  # cold: it keeps nothing (every get misses)
    for ext in ("atom", "rss", "json"):
        samples, cpu = [], []
        for _ in range(ROUNDS):
            start, start_cpu = time.perf_counter(), time.thread_time()
            resp = client.get(f"/feeds/topics/ai.{ext}")
            samples.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
            assert resp.status_code == 200
        samples.sort()
        out[ext] = statistics.median(samples) * 1000
        out[ext + "_p95"] = samples[int(len(samples) * 0.95)] * 1000
        out[ext + "_cpu"] = statistics.median(cpu) * 1000
    return out


def main() -> None:
    small, large = measure(10000), measure(100000)
    lines = ["| format | p50 at 10k | p50 at 100k | p95 at 100k | ratio 100k/10k | p50 CPU time at 100k |",
             "|---|---:|---:|---:|---:|---:|"]
    for ext in ("atom", "rss", "json"):
        lines.append(f"| {ext} | {small[ext]:.2f} ms | {large[ext]:.2f} ms | {large[ext + '_p95']:.2f} ms | "
                     f"{large[ext] / small[ext]:.2f} | {large[ext + '_cpu']:.2f} ms |")
    lines += ["", f"{ROUNDS} cold renders each of /feeds/topics/ai.<ext> (50 entries) of the corpus-derived trees through "
              "the Flask test client, with a render cache that keeps nothing. Targets: p50 <= 5 ms, ratio <= 1.5. CPU time: "
              "the request thread's own (time.thread_time), which the machine's load does not inflate. "
              f"Load average at the end: {open('/proc/loadavg').read().split()[1]} (the machine is shared)."]
    record("Cold feed render latency (bench/render_bench.py)", lines)


if __name__ == "__main__":
    main()
