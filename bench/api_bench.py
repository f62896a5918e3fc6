"""Lookup latency at 100k articles, and the cost of signing a collection response.

Usage: python bench/api_bench.py [--articles N]
Runs in-process through the Flask test client (no network), so it measures the app's work.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from common import OUT, corpus, record

from feeds.importer import sync
from feeds.query import FeedQuery
from server import create_app, get_store
from feeds.entry import Entry
from feeds.urlnorm import normalize_url, url_hash
from server import api_objects, signing
from server.context import master_keys
from server.links import Links


def percentile(samples: list[float], q: float) -> float:
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(len(samples) * q))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=100000)
    args = parser.parse_args()
    instance = OUT / f"render-instance-{args.articles}"
    app = create_app({"API_ACCESS": "public"}, instance)
    store = get_store(app)
    if store.stats()["articles"] != args.articles:
        sync(store, [corpus(args.articles)])
    client = app.test_client()
    rows = [r for r in store.iter_index_rows() if r.published and not r.duplicate_of]
    rng = random.Random(1)
    known = [store.article(r.id).record["originalUrl"] for r in rng.sample(rows, 300)]
    prefixes = [url_hash(normalize_url(u))[:8] for u in known]
    misses = ["%08x" % rng.getrandbits(32) for _ in range(300)]
    timings: dict[str, list[float]] = {"lookup hit (prefix)": [], "lookup miss (prefix)": [], "lookup by url": []}
    for name, paths in (("lookup hit (prefix)", [f"/api/v1/lookup?prefix={p}" for p in prefixes]),
                        ("lookup miss (prefix)", [f"/api/v1/lookup?prefix={p}" for p in misses]),
                        ("lookup by url", [f"/api/v1/lookup?url={u}" for u in known])):
        for path in paths:
            start = time.perf_counter()
            resp = client.get(path)
            timings[name].append(time.perf_counter() - start)
            assert resp.status_code == 200
    hits = sum(1 for p in prefixes if client.get(f"/api/v1/lookup?prefix={p}").json["value"])
    assert hits == len(prefixes)

    # Signing overhead: the same 20-item collection serialised with and without `secured` fields.
    page = store.recent("topic", "ai", FeedQuery(limit=20))
    names = store.topic_names()
    entries = [Entry.of(r, names) for r in page]
    neighbours = {i: Entry.of(r, names) for i, r in store.articles_by_ids({i for r in page for i in r.related}).items()}
    keys = master_keys(app)
    links = Links("http://localhost")
    hashes = store.url_hashes([r.id for r in page] + list(neighbours))

    def unsigned() -> bytes:
        value = []
        for e in entries:
            obj = api_objects.summary_object(e, links, hashes)
            obj["related"] = api_objects.curated_related(e) + [api_objects.summary_object(neighbours[i], links, hashes)
                                                               for i in e.row.related if i in neighbours]
            value.append(obj)
        return json.dumps({"title": "AI", "value": value}, ensure_ascii=False).encode()

    def signed() -> bytes:
        value = [api_objects.article_object(e, neighbours, links, hashes, keys) for e in entries]
        return json.dumps(signing.sign_object({"title": "AI", "value": value}, keys), ensure_ascii=False).encode()

    with app.test_request_context("/"):
        costs = {}
        for name, fn in (("unsigned", unsigned), ("signed", signed)):
            samples = []
            for _ in range(200):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            costs[name] = statistics.median(samples) * 1000
        n_signed = len(json.loads(signed())["value"]) + sum(len(a["related"]) for a in json.loads(signed())["value"]) + 1
    # Curator writes: a writable root layered over the corpus, so the benchmark leaves it untouched.
    import tempfile
    from server.cli import main as cli
    writable = Path(tempfile.mkdtemp(prefix="topicfeed-bench-writes-"))
    app.config["CONTENT_DIRS"] = [str(corpus(args.articles)), str(writable)]
    admin = {"Authorization": "Bearer " + app.test_cli_runner().invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()}
    for name in ("curator POST", "curator DELETE"):
        timings[name] = []
    for n in range(20):
        body = {"id": f"bench-write-{n}", "title": f"Benchmark write {n} about robots", "topics": ["AI", "Robotics"],
                "publishedDateTime": "2031-01-01T00:00:00Z", "webUrl": f"https://example.org/bench-write-{n}"}
        start = time.perf_counter()
        assert client.post("/api/v1/articles", json=body, headers=admin).status_code == 201
        timings["curator POST"].append(time.perf_counter() - start)
    for n in range(20):
        start = time.perf_counter()
        assert client.delete(f"/api/v1/articles/bench-write-{n}", headers=admin).status_code == 204
        timings["curator DELETE"].append(time.perf_counter() - start)
    lines = ["| request | p50 | p99 |", "|---|---:|---:|"]
    lines += [f"| {name} | {percentile(t, 0.5):.2f} ms | {percentile(t, 0.99):.2f} ms |" for name, t in timings.items()]
    lines += ["", f"300 lookups each (20 curator writes) against {args.articles:,} articles, through the Flask test client "
              "(no network). A write validates, writes the file atomically and indexes that one record.",
              "", "| 20-article collection with related lists | p50 |", "|---|---:|",
              f"| built unsigned | {costs['unsigned']:.2f} ms |", f"| built and signed ({n_signed} `secured` fields) | {costs['signed']:.2f} ms |",
              f"| signing overhead (ratio) | {costs['signed'] / costs['unsigned']:.2f}x |"]
    record("Signed API: lookup latency and signing overhead (bench/api_bench.py)", lines)


if __name__ == "__main__":
    main()
