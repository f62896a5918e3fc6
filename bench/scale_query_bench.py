"""Query figures of issue 11 part 4: cold 50-entry topic feed p50 and API lookup p50 on SQLite and
on PostgreSQL, at each tree size given (100k, and 1M when it can be imported in time).

The trees are corpus-derived (bench/corpus_tree.py) and imported by `topicfeed import` itself,
once, into ``bench/out/scale-N/sqlite`` and into the private PostgreSQL cluster of
bench/scale_bench.py (``bench/out/scale-N/pgdata``, bench/pgcluster.py). The requests run in this
process through the Flask test client (no network, one request at a time), so the figures are the
app's and the database's own work: a cold feed is rendered with a render cache that keeps nothing
(as bench/render_bench.py), a lookup is ``/api/v1/lookup?prefix=`` of a known article (8 hex, a
hit) or of a random prefix (a miss), as bench/api_bench.py. Wall p50 and the request thread's own
CPU time p50 (``time.thread_time``; PostgreSQL's work happens in its backend and shows in wall only).

Usage: python bench/scale_query_bench.py [SIZES...]   (default 100000)
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout, not the installed one

from common import OUT, real_corpus, record  # noqa: E402
from pgcluster import imported_cluster, proc_cpu_seconds, timed_import, write_instance  # noqa: E402

from feeds.urlnorm import url_hash  # noqa: E402
from server import create_app, get_store  # noqa: E402
from server.httpcache import RenderCache  # noqa: E402

ROUNDS = 100
FEED = "/feeds/topics/ai.atom"


def timed(client, paths: list[str]) -> tuple[float, float]:
    """(wall p50 ms, thread CPU p50 ms) of GETs of ``paths``, one at a time; each must answer 200."""
    wall, cpu = [], []
    for path in paths:
        start, start_cpu = time.perf_counter(), time.thread_time()
        resp = client.get(path)
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        if resp.status_code != 200:
            raise RuntimeError(f"{path} answered {resp.status_code}")
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def measure(instance: Path, settings: dict[str, object], pg_pid: int | None = None) -> dict[str, tuple[float, ...]]:
    """Cold feed, lookup hit and lookup miss figures of the index behind ``instance``: (wall p50
    ms, thread CPU p50 ms, PostgreSQL CPU ms per request when ``pg_pid`` is its postmaster)."""
    app = create_app({"API_ACCESS": "public", **settings}, instance)
    store = get_store(app)
    client = app.test_client()
    rows = [r for r in store.iter_index_rows() if r.published and not r.duplicate_of]
    rng = random.Random(1)
    hits = [f"/api/v1/lookup?prefix={url_hash(r.norm_url)[:8]}" for r in rng.sample(rows, ROUNDS)]
    if not client.get(hits[0]).json["value"]:
        raise RuntimeError(f"lookup found nothing for a known article ({hits[0]})")
    misses = [f"/api/v1/lookup?prefix={rng.getrandbits(32):08x}" for _ in range(ROUNDS)]
    out = {}

    def pg_cpu() -> float:
        return proc_cpu_seconds(pg_pid) if pg_pid else 0.0

    cold_wall, cold_cpu, before = [], [], pg_cpu()
    for _ in range(ROUNDS):
        app.extensions["topicfeed.cache"] = RenderCache(store, 0, 3600)  # cold: it keeps nothing
        wall, cpu = timed(client, [FEED])
        cold_wall.append(wall)
        cold_cpu.append(cpu)
    out["cold feed"] = (statistics.median(cold_wall), statistics.median(cold_cpu), (pg_cpu() - before) / ROUNDS * 1000)
    client.get(hits[0])  # connection pool and statement caches warm, as in a running server
    for name, paths in (("lookup hit", hits), ("lookup miss", misses)):
        before = pg_cpu()
        out[name] = (*timed(client, paths), (pg_cpu() - before) / len(paths) * 1000)
    store.close()
    return out


def sqlite_instance(articles: int) -> tuple[Path, dict]:
    """The SQLite instance holding the tree, imported by `topicfeed import` the first time."""
    folder = OUT / f"scale-{articles}" / "sqlite"
    figures_file = folder.parent / "sqlite-imported.json"
    if not figures_file.exists():
        write_instance(folder, None, {})
        figures = timed_import(folder, real_corpus(articles))
        if f"added {articles}," not in figures["summary"]:
            raise RuntimeError(f"SQLite import of {articles} records said: {figures['summary']}")
        figures_file.write_text(json.dumps(figures))
    return folder, json.loads(figures_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100000])
    parser.add_argument("--import-only", choices=("sqlite", "postgresql"),
                        help="only import the trees into this database (once; the figures are kept for a later run)")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="which of sqlite,postgresql to measure (comma-separated)")
    args = parser.parse_args()
    databases = {d.strip().lower() for d in args.databases.split(",")}
    if not databases or databases - {"sqlite", "postgresql"}:
        parser.error(f"--databases: expected sqlite and/or postgresql, got {args.databases!r}")
    if args.import_only:
        # a long import (1M: ~30 min) runs on its own, in the background, next to the other one
        for n in args.sizes:
            if args.import_only == "sqlite":
                print(n, "SQLite", sqlite_instance(n)[1], flush=True)
            else:
                cluster, _, figures = imported_cluster(OUT / f"scale-{n}", n, real_corpus(n))
                cluster.stop()
                print(n, "PostgreSQL", figures, flush=True)
        return
    results: dict[tuple[int, str], dict] = {}
    imports: dict[tuple[int, str], dict] = {}
    for n in args.sizes:
        if "sqlite" in databases:
            folder, imports[n, "SQLite"] = sqlite_instance(n)
            results[n, "SQLite"] = measure(folder, {})
        if "postgresql" in databases:
            cluster, base, imports[n, "PostgreSQL"] = imported_cluster(OUT / f"scale-{n}", n, real_corpus(n))
            try:
                results[n, "PostgreSQL"] = measure(base, {"DATABASE_URL": cluster.url("topicfeed")},
                                                   cluster.postmaster_pid())
            finally:
                cluster.stop()
        print(json.dumps({f"{k[0]} {k[1]}": v for k, v in results.items()}), flush=True)
    lines = ["| articles | database | cold feed p50 | its CPU: app thread + PostgreSQL | lookup hit p50 | its CPU | lookup miss "
             "p50 | its CPU | import: wall, records/s, CPU s (import tree + PostgreSQL), load | import peak PSS |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for (n, db), r in results.items():
        imp = imports[n, db]
        cells = [f"{r[k][0]:.1f} ms | {r[k][1]:.1f} + {r[k][2]:.1f} ms" if db == "PostgreSQL" else
                 f"{r[k][0]:.1f} ms | {r[k][1]:.1f} ms" for k in ("cold feed", "lookup hit", "lookup miss")]
        lines.append(f"| {n:,} | {db} | " + " | ".join(cells) + f" | {imp['seconds']:.0f} s, {n / imp['seconds']:,.0f}/s, "
                     f"{imp['cpu']:.0f} + {imp['pg_cpu']:.0f}, {imp['load']:.1f} | "
                     + (f"{imp['pss_peak']:.0f} MB |" if "pss_peak" in imp else "- |"))
    smallest = min(args.sizes)
    for n in sorted(args.sizes):
        if n != smallest:
            for db in sorted({db for _, db in results}):
                lines.append("")
                big, small = results[n, db], results[smallest, db]
                lines.append(f"{db} {n:,} / {smallest:,}: " + ", ".join(
                    f"{k} {big[k][0] / small[k][0]:.2f}x wall, {(big[k][1] + big[k][2]) / (small[k][1] + small[k][2]):.2f}x CPU"
                    for k in ("cold feed", "lookup hit")))
                bi, si = imports[n, db], imports[smallest, db]
                lines[-1] += (f"; import records/s {(n / bi['seconds']) / (smallest / si['seconds']):.2f}x, CPU-s per record "
                              f"(import tree + PostgreSQL) {((bi['cpu'] + bi['pg_cpu']) / n) / ((si['cpu'] + si['pg_cpu']) / smallest):.2f}x"
                              + (f", import peak PSS {bi['pss_peak'] / si['pss_peak']:.2f}x" if "pss_peak" in bi and "pss_peak" in si
                                 else ""))
    lines += ["", f"{ROUNDS} requests of each kind, one at a time, through the Flask test client in one process: {FEED} "
              "(50 entries) with a render cache that keeps nothing; lookups by an 8-hex prefix of a known article (hit) or a "
              "random one (miss), API access public (signed answers as for a client). PostgreSQL 15 (fsync off) on the same "
              "machine over TCP. Target (issue 11 part 4): the 1M figures within 2x of the 100k ones. The machine is shared: "
              f"load average {open('/proc/loadavg').read().split()[1]} at the end, so wall p50s are inflated; the CPU columns "
              "(p50 of the request thread's own time, plus PostgreSQL's process-tree CPU per request) are not."]
    # the sizes and databases are in the title: a run of other sizes adds its own section
    sizes = " and ".join(f"{n:,}" for n in sorted(args.sizes))
    dbs = " and ".join(sorted({db for _, db in results}))
    record(f"Query figures at scale, {sizes} articles, {dbs} (bench/scale_query_bench.py)", lines)


if __name__ == "__main__":
    main()
