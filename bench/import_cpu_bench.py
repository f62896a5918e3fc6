"""CPU seconds per record of a first import, in one process (no worker processes), side by side
with another checkout: a figure that moves little with the machine's load, unlike wall time.

Usage: python bench/import_cpu_bench.py [SIZE] [--compare CHECKOUT] [--rounds 2]   (default 10000)
Each round runs ``feeds.importer.sync`` into a fresh SQLite file in a fresh process for every
checkout in turn (interleaved, so a change in the machine's load hits both); the table gives
each checkout's best round: process CPU seconds of the whole sync and of its ranking part
(``refresh_derived``: deduplication and related lists). Worker processes are off
(``worker_count`` = 1), so what they would add (pickling records across processes) is not in it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from common import BENCH, real_corpus, record

# Runs in a child process with the checkout on PYTHONPATH; prints {"total": s, "ranking": s}.
CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import feeds.importer as importer
importer.worker_count = lambda: 1
ranking = [0.0]
refresh = importer.refresh_derived
def timed(*args, **kwargs):
    start = time.process_time()
    try:
        return refresh(*args, **kwargs)
    finally:
        ranking[0] += time.process_time() - start
importer.refresh_derived = timed
from feeds.store import Store
with tempfile.TemporaryDirectory() as tmp:
    store = Store(f"sqlite:///{tmp}/index.db")
    start = time.process_time()
    report = importer.sync(store, [Path(sys.argv[1])])
    total = time.process_time() - start
    store.close()
assert not report.skipped, report.summary()
print(json.dumps({"total": total, "ranking": ranking[0], "records": len(report.added)}))
"""


def run(code: str, content: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, content], env={**os.environ, "PYTHONPATH": code},
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("size", nargs="?", type=int, default=10000)
    parser.add_argument("--compare", default=None, metavar="CHECKOUT", help="another checkout to measure alongside")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    content = str(real_corpus(args.size))
    codes = ([(os.path.abspath(args.compare), f"compared: {args.compare}")] if args.compare else []) + [(str(BENCH.parent), "this")]
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for code, label in codes:
            got = run(code, content)
            assert got["records"] == args.size, got
            if label not in best or got["total"] < best[label]["total"]:
                best[label] = got
    lines = ["| articles | code | CPU s, whole sync | of it ranking (refresh_derived) | CPU ms per record |",
             "|---:|---|---:|---:|---:|"]
    for _, label in codes:
        b = best[label]
        lines.append(f"| {args.size:,} | {label} | {b['total']:.1f} | {b['ranking']:.1f} | {b['total'] * 1000 / args.size:.2f} |")
    if len(codes) == 2:
        before, after = best[codes[0][1]], best["this"]
        lines += ["", f"This checkout / compared: whole sync {after['total'] / before['total']:.2f}x, "
                      f"ranking {after['ranking'] / before['ranking']:.2f}x, other work "
                      f"{(after['total'] - after['ranking']) / (before['total'] - before['ranking']):.2f}x the CPU seconds."]
    lines += ["", f"One process (no workers), best of {args.rounds} interleaved rounds; load average "
                  f"{open('/proc/loadavg').read().split()[1]} (5 min) at the end of the run."]
    record(f"Import CPU per record, one process, side by side (bench/import_cpu_bench.py, {args.size:,})", lines)


if __name__ == "__main__":
    main()
