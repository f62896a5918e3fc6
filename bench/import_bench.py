"""Import throughput and memory for synthetic corpora; unchanged re-sync time.

Usage: python bench/import_bench.py [SIZES...]   (default 1000 10000 100000)
Each import runs in a fresh process (`topicfeed import`), so peak RSS is the command's own.
"""
from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time

from common import OUT, corpus, record


def run_import(instance, content) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "server", "import", "--instance", str(instance), str(content)],
                          capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024, proc.stdout.strip().splitlines()[0]


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000, 100000]
    lines = ["| articles | first import | records/s | peak RSS (MB, max so far) | unchanged re-sync |", "|---:|---:|---:|---:|---:|"]
    for n in sizes:
        content = corpus(n)
        instance = OUT / f"import-instance-{n}"
        shutil.rmtree(instance, ignore_errors=True)
        first, peak, summary = run_import(instance, content)
        assert f"added {n}," in summary, summary
        again, _, summary2 = run_import(instance, content)
        assert f"unchanged {n}," in summary2, summary2
        lines.append(f"| {n:,} | {first:.1f} s | {n / first:,.0f} | {peak:.0f} | {again:.2f} s |")
        print(lines[-1], flush=True)
    lines += ["", "Targets: >= 2,000 records/s on 2 cores; unchanged re-sync of 100k <= 5 s. Times include process start-up "
              "(~0.5 s). Peak RSS is ru_maxrss of the import processes, cumulative over the rows above it."]
    record("Import throughput (bench/import_bench.py)", lines)


if __name__ == "__main__":
    main()
