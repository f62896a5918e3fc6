"""Cold render latency of a 50-entry topic feed (query + feedgen + HTTP layer, cache bypassed)
at 1k and 100k articles: the index must keep it flat as the store grows.

Usage: python bench/render_bench.py   (imports the synthetic corpora if needed)
"""
from __future__ import annotations

import statistics
import time

from common import OUT, corpus, record

from feeds.importer import sync
from server import create_app, get_store
from server.httpcache import RenderCache

ROUNDS = 200


def measure(n: int) -> dict[str, float]:
    instance = OUT / f"render-instance-{n}"
    app = create_app({"API_ACCESS": "public"}, instance)
    store = get_store(app)
    if store.stats()["articles"] != n:
        sync(store, [corpus(n)])
    client = app.test_client()
    out = {}
    for ext in ("atom", "rss", "json"):
        samples = []
        for _ in range(ROUNDS):
            app.extensions["topicfeed.cache"] = RenderCache(store, 1, 3600)  # cold: nothing rendered yet
            start = time.perf_counter()
            resp = client.get(f"/feeds/topics/robotics.{ext}")
            samples.append(time.perf_counter() - start)
            assert resp.status_code == 200
        samples.sort()
        out[ext] = statistics.median(samples) * 1000
        out[ext + "_p95"] = samples[int(len(samples) * 0.95)] * 1000
    return out


def main() -> None:
    small, large = measure(1000), measure(100000)
    lines = ["| format | p50 at 1k | p50 at 100k | p95 at 100k | ratio 100k/1k |", "|---|---:|---:|---:|---:|"]
    for ext in ("atom", "rss", "json"):
        lines.append(f"| {ext} | {small[ext]:.2f} ms | {large[ext]:.2f} ms | {large[ext + '_p95']:.2f} ms | "
                     f"{large[ext] / small[ext]:.2f} |")
    lines += ["", f"{ROUNDS} cold renders each of /feeds/topics/robotics.<ext> (50 entries) through the Flask test client, "
              "with the render cache replaced before every request. Targets: p50 <= 10 ms, ratio <= 1.5."]
    record("Cold feed render latency (bench/render_bench.py)", lines)


if __name__ == "__main__":
    main()
