"""Curator write cost (issue 11): wall time, CPU seconds and SQL statements per write of the
index work a curator POST/PUT/DELETE does (``feeds.writer`` + ``feeds.importer.index_record``
in one ``Store.write()`` transaction, what ``server/curator.py`` runs under its lock, without
HTTP), on copies of imported 10k and 100k instances, for this worktree's code and another
checkout's (``--before``, e.g. a ``git worktree`` of main), side by side in one run.

Usage: python bench/write_bench.py [SIZES...] [--before /tmp/wc-main] [--writes 45]
                                   [--source bench/out]
``--source`` holds ``import-instance-N`` and ``corpus-N`` (from bench/import_bench.py); each
code version writes to its own fresh copy of the database, never to the source.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, record

REPO = Path(__file__).resolve().parents[1]


def child(db: Path, corpus: Path, writes: int) -> None:
    """Run in the code version under test (PYTHONPATH): ``writes`` writes cycling POST, PUT,
    DELETE over new articles in the largest topics; prints per-operation samples as JSON."""
    from feeds.importer import index_record
    from feeds.store import Store
    from feeds.taxonomy import load_taxonomy
    from feeds.writer import delete_record, write_record

    store = Store(f"sqlite:///{db}")
    # main before this branch has no Store.count_statements: its statements show as "—"
    statements = store.count_statements() if hasattr(store, "count_statements") else [-1]
    root = Path(tempfile.mkdtemp(prefix="write-bench-"))
    roots = [corpus, root]
    taxonomy = load_taxonomy(roots)
    topics = [t.name for t in sorted(taxonomy.topics.values(), key=lambda t: t.position)][:12]
    samples: dict[str, list[tuple[float, float, int]]] = {"POST": [], "PUT": [], "DELETE": []}
    day = 1_700_000_000
    for n in range(writes):
        op, k = ("POST", "PUT", "DELETE")[n % 3], n // 3
        article_id = f"write-bench-{k}"
        fields = {"title": f"Write bench {op.lower()} {k} cloud model agents security",
                  "excerpt": "A curator's story about data platforms, copilots and analytics.",
                  "publishedDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day + k * 86400)),
                  "webUrl": f"https://bench.example/write/{k}", "topics": [topics[k % len(topics)], topics[(k + n) % len(topics)]],
                  "provider": {"name": "Bench", "domain": "bench.example"}}
        statements[0] = 0 if statements[0] >= 0 else -1
        wall, cpu = time.perf_counter(), time.process_time()
        if op == "DELETE":
            delete_record(root, article_id)
        else:
            write_record(root, article_id, fields)
        with store.write() as tx:
            index_record(tx, roots, taxonomy, article_id)
        samples[op].append((time.perf_counter() - wall, time.process_time() - cpu, statements[0]))
    store.close()
    shutil.rmtree(root)
    print(json.dumps(samples))


def loadavg() -> str:
    """The 1-minute load average (the machine is shared: it says how busy it was)."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run(code: Path, source: Path, size: int, writes: int) -> tuple[dict[str, list[list[float]]], str, str]:
    """Samples of one code version on a fresh copy of the size's database, and the load
    average before and after."""
    work = OUT / f"write-bench-{size}"
    work.mkdir(parents=True, exist_ok=True)
    db = work / "topicfeed.db"
    shutil.copyfile(source / f"import-instance-{size}" / "topicfeed.db", db)
    load = loadavg()
    out = subprocess.run([sys.executable, __file__, "--child", str(db), str(source / f"corpus-{size}"), str(writes)],
                         env={**os.environ, "PYTHONPATH": str(code)}, cwd=code, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    db.unlink()
    return json.loads(out.stdout.strip().splitlines()[-1]), load, loadavg()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10000, 100000])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the code to compare with (main)")
    parser.add_argument("--writes", type=int, default=45, help="writes per run, cycling POST, PUT, DELETE")
    parser.add_argument("--source", type=Path, default=OUT, help="folder with import-instance-N and corpus-N")
    args = parser.parse_args()
    lines = ["| articles | code | op | writes | wall p50 / p90 ms | CPU ms per write (mean) | SQL statements per write (mean) "
             "| load avg (start → end) |", "|---:|---|---|---:|---:|---:|---:|---:|"]
    for size in args.sizes:
        for name, code in (("main", args.before.resolve()), ("this branch", REPO)):
            samples, load_start, load_end = run(code, args.source.resolve(), size, args.writes)
            for op, rows in samples.items():
                walls = sorted(r[0] for r in rows)
                count = f"{statistics.mean(r[2] for r in rows):.0f}" if rows[0][2] >= 0 else "—"
                lines.append(f"| {size:,} | {name} | {op} | {len(rows)} | {statistics.median(walls) * 1000:.0f} / "
                             f"{walls[int(0.9 * (len(walls) - 1))] * 1000:.0f} | "
                             f"{statistics.mean(r[1] for r in rows) * 1000:.0f} | {count} | "
                             f"{load_start} → {load_end} |")
    lines += ["", "In-process index work of a curator write on SQLite (file write + `index_record` in one "
              "`Store.write()` transaction, as server/curator.py runs it, without HTTP and without the render-cache "
              "invalidation); each write is a new article in two of the 12 first topics (POST), then a replace moving it "
              "to other topics (PUT), then its deletion (DELETE). Both code versions in one run on fresh copies of the "
              "same imported instance; the machine is shared with other engineers' tests, so read the CPU column first."]
    record("Curator write cost (bench/write_bench.py)", lines)


if __name__ == "__main__":
    main()
