"""Import throughput, process-tree peak memory and unchanged re-sync on corpus-derived trees.

Usage: python bench/import_bench.py [SIZES...] [--cpus 0] [--compare CHECKOUT]   (default 10000 100000)
Each import runs in a fresh process (`python -m server import`, the code of this checkout); its
peak memory is the PSS of the whole process tree (main + parse workers) sampled from
/proc/PID/smaps_rollup every 50 ms. ``--cpus 0`` runs the imports under ``taskset -c 0`` (the
one-core VPS). ``--compare DIR`` first runs the same imports with the code of another checkout
(e.g. ``git worktree add ../base <commit>``), so before and after are measured side by side.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

from common import BENCH, OUT, PeakSampler, real_corpus, record


def _env(code: str) -> dict[str, str]:
    """The environment that runs ``python -m server`` from the checkout ``code`` (not from
    whatever ``topicfeed`` is installed)."""
    return {**os.environ, "PYTHONPATH": code}


def run_import(instance, content, cpus: str | None, code: str) -> tuple[float, float, float, str]:
    cmd = [sys.executable, "-m", "server", "import", "--instance", str(instance), str(content)]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(code))
    sampler = PeakSampler(proc.pid)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    peak = sampler.stop()
    if proc.returncode:
        raise RuntimeError(f"import failed ({proc.returncode}): {out}{err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, peak, out.strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[10000, 100000])
    parser.add_argument("--cpus", default=None, help="taskset CPU list, e.g. 0")
    parser.add_argument("--compare", default=None, metavar="CHECKOUT",
                        help="also run each import with this checkout's code first (the 'before' side)")
    args = parser.parse_args()
    where = f"taskset -c {args.cpus}" if args.cpus else "all cores"
    here = str(BENCH.parent)
    codes = [(os.path.abspath(args.compare), "compared"), (here, "this")] if args.compare else [(here, "this")]
    lines = ["| articles | code | cores | first import | records/s | CPU s (tree) | peak PSS, process tree | unchanged re-sync | its CPU s |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    ratios = []
    for n in args.sizes:
        content = real_corpus(n)
        figures = []
        for code, label in codes:
            instance = OUT / f"import-instance-{n}"
            shutil.rmtree(instance, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "server", "init", "--instance", str(instance)], check=True,
                           stdout=subprocess.DEVNULL, env=_env(code))
            first, cpu, peak, summary = run_import(instance, content, args.cpus, code)
            assert f"added {n}," in summary, summary
            again, cpu2, _, summary2 = run_import(instance, content, args.cpus, code)
            assert f"unchanged {n}," in summary2, summary2
            figures.append((first, cpu))
            shown = label if label == "this" else f"{label}: {code}"
            lines.append(f"| {n:,} | {shown} | {where} | {first:.1f} s | {n / first:,.0f} | {cpu:.1f} | {peak:.0f} MB | "
                         f"{again:.2f} s | {cpu2:.2f} |")
            print(lines[-1], flush=True)
        if len(figures) == 2:
            (base_wall, base_cpu), (wall, cpu) = figures
            ratios.append(f"{n:,}: records/s {base_wall / wall:.2f}x, CPU s of the import {cpu / base_cpu:.2f}x of the compared code's")
    lines += ["", "Corpus-derived trees (bench/corpus_tree.py). Targets at 100k: >= 3,000 records/s, peak PSS of the "
              "process tree <= 150 MB and flat across sizes, unchanged re-sync <= 2 s. Times include process start-up. "
              f"CPU s: user+system seconds of the whole tree (load-independent; wall times move with the machine's "
              f"load, {open('/proc/loadavg').read().split()[1]} (5-min load average) at the end of this run)."]
    if ratios:
        lines += ["", "This checkout against the compared one (same tree, same run): " + "; ".join(ratios) + "."]
    # a comparison is its own section: it must not replace the single-checkout figures
    title = "Import throughput, side by side with another checkout" if args.compare else "Import throughput and memory"
    record(f"{title}, {where} (bench/import_bench.py)", lines)


if __name__ == "__main__":
    main()
