"""Import throughput, process-tree peak memory and unchanged re-sync on corpus-derived trees.

Usage: python bench/import_bench.py [SIZES...] [--cpus 0] [--base DIR] [--resyncs N]
(default sizes 10000 100000). Each import runs in a fresh process (`python -m server import`);
its peak memory is the PSS of the whole process tree (main + workers) sampled from
/proc/PID/smaps_rollup every 50 ms, and the main process's own peak PSS beside it.
``--cpus 0`` runs the imports under ``taskset -c 0`` (the one-core VPS). ``--base DIR`` runs
another checkout of topicfeed (e.g. a ``git worktree`` of the merge base) on the same trees in
the same run, size by size and in turns with this tree, and gives the ratios; the re-sync is
run ``--resyncs`` times per code (median reported).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import BENCH, OUT, PeakSampler, real_corpus, record

HERE = BENCH.parent


def run_import(code: Path, instance: Path, content: Path, cpus: str | None) -> tuple[float, float, float, float, str]:
    """(wall s, CPU s of the process tree, peak PSS of the tree MB, peak PSS of the main
    process MB, first output line) of one ``python -m server import`` of ``code``."""
    cmd = [sys.executable, "-m", "server", "import", "--instance", str(instance), str(content)]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    env = {**os.environ, "PYTHONPATH": str(code)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=code, env=env)
    sampler = PeakSampler(proc.pid)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    peak = sampler.stop()
    if proc.returncode:
        raise RuntimeError(f"import failed ({proc.returncode}): {out}{err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, peak, sampler.main_peak, out.strip().splitlines()[0]


def measure(code: Path, n: int, label: str, cpus: str | None, resyncs: int) -> dict[str, float]:
    """First import of the ``n``-article tree into a fresh instance, then ``resyncs`` unchanged
    re-syncs (medians)."""
    content = real_corpus(n)
    instance = OUT / f"import-instance-{label}-{n}"
    shutil.rmtree(instance, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "server", "init", "--instance", str(instance)], check=True, cwd=code,
                   env={**os.environ, "PYTHONPATH": str(code)}, stdout=subprocess.DEVNULL)
    first, cpu, peak, main_peak, summary = run_import(code, instance, content, cpus)
    assert f"added {n}," in summary, summary
    walls, cpus_s = [], []
    for _ in range(resyncs):
        again, cpu2, _, _, summary2 = run_import(code, instance, content, cpus)
        assert f"unchanged {n}," in summary2, summary2
        walls.append(again)
        cpus_s.append(cpu2)
    shutil.rmtree(instance, ignore_errors=True)
    return {"first": first, "cpu": cpu, "peak": peak, "main": main_peak,
            "again": statistics.median(walls), "again_cpu": statistics.median(cpus_s)}


def git_rev(code: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code, capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[10000, 100000])
    parser.add_argument("--cpus", default=None, help="taskset CPU list, e.g. 0")
    parser.add_argument("--base", "--compare", dest="base", type=Path, default=None, help="another checkout to run side by side")
    parser.add_argument("--resyncs", type=int, default=3, help="unchanged re-syncs per import (median)")
    args = parser.parse_args()
    where = f"taskset -c {args.cpus}" if args.cpus else "all cores"
    codes = [("this tree", HERE)] + ([(f"base {git_rev(args.base)}", args.base.resolve())] if args.base else [])
    lines = ["| code | articles | cores | first import | records/s | CPU s (tree) | peak PSS, process tree | "
             "peak PSS, main process | unchanged re-sync | its CPU s |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    results: dict[tuple[str, int], dict[str, float]] = {}
    loads = []
    for n in args.sizes:
        for label, code in codes:
            r = results[label, n] = measure(code, n, label.split()[0], args.cpus, args.resyncs)
            loads.append(float(open("/proc/loadavg").read().split()[0]))
            lines.append(f"| {label} | {n:,} | {where} | {r['first']:.1f} s | {n / r['first']:,.0f} | {r['cpu']:.1f} | "
                         f"{r['peak']:.0f} MB | {r['main']:.0f} MB | {r['again']:.2f} s | {r['again_cpu']:.2f} |")
            print(lines[-1], flush=True)
    if args.base:
        base = codes[1][0]
        lines += ["", f"Ratios, this tree / {base}:", ""]
        for n in args.sizes:
            mine, theirs = results["this tree", n], results[base, n]
            lines.append(f"- {n:,}: peak PSS {mine['peak'] / theirs['peak']:.2f}x, main process "
                         f"{mine['main'] / theirs['main']:.2f}x, import CPU {mine['cpu'] / theirs['cpu']:.2f}x, "
                         f"re-sync CPU {mine['again_cpu'] / theirs['again_cpu']:.2f}x, "
                         f"re-sync wall {mine['again'] / theirs['again']:.2f}x")
    lines += ["", "Corpus-derived trees (bench/corpus_tree.py). Targets at 100k: >= 3,000 records/s, peak PSS of the "
              "process tree <= 150 MB and flat across sizes, unchanged re-sync <= 2 s. Times include process start-up; "
              f"re-sync figures are the median of {args.resyncs}. CPU s: user+system seconds of the whole tree "
              "(load-independent; wall times move with the machine's load: the 1-minute load average after each "
              f"import was {', '.join(f'{x:.1f}' for x in loads)}; "
              f"{open('/proc/loadavg').read().split()[1]} (5-min) at the end of this run)."]
    title = f"Import throughput and memory, {where} (bench/import_bench.py)"
    record(title + (f", side by side with {codes[1][0]}" if args.base else ""), lines)


if __name__ == "__main__":
    main()
