"""Progress of a running `topicfeed import` from outside, for imports too long to wait for (1M
articles on a shared machine): every INTERVAL seconds one JSON line with the elapsed seconds, the
CPU seconds and PSS (MB) of the import's process tree (main + workers), its peak PSS so far, and
the bytes its worker processes have read (``rchar`` of ``/proc/PID/io``, summed; the record files
are most of it, so against the tree's size it is the share of the tree parsed so far, until the workers move on
to ranking related lists, when SQLite's workers read the database too).

Usage: python bench/watch_import.py PID TREE_DIR [--interval S]   (PID: the `topicfeed import` process)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import process_tree, tree_pss_mb  # noqa: E402
from pgcluster import proc_cpu_seconds  # noqa: E402


def read_bytes(pid: int) -> int:
    """``rchar`` summed over the live worker processes of ``pid`` (they read the record files;
    the main process also reads the database, so it is left out; exited workers' reads are lost)."""
    total = 0
    for current in process_tree(pid)[1:]:
        try:
            total += next(int(l.split()[1]) for l in open(f"/proc/{current}/io") if l.startswith("rchar:"))
        except (OSError, StopIteration, ValueError):
            continue  # it ended while being read
    return total


def age(pid: int) -> float:
    """Seconds since ``pid`` started (``starttime`` of ``/proc/PID/stat`` against ``/proc/uptime``)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22 of proc(5)
    return float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")


def tree_bytes(tree: Path) -> int:
    """Bytes of the record files under ``tree/_news``."""
    with os.scandir(tree / "_news") as entries:
        return sum(e.stat().st_size for e in entries if e.name.endswith(".md"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pid", type=int)
    parser.add_argument("tree", type=Path)
    parser.add_argument("--interval", type=float, default=60)
    args = parser.parse_args()
    if not Path(f"/proc/{args.pid}").exists():
        sys.exit(f"pid {args.pid}: no such process")
    size, start, peak = tree_bytes(args.tree), time.monotonic(), 0.0
    while Path(f"/proc/{args.pid}").exists():
        pss = tree_pss_mb(args.pid)
        peak = max(peak, pss)
        read = read_bytes(args.pid)
        print(json.dumps({"elapsed": round(age(args.pid)), "cpu": round(proc_cpu_seconds(args.pid), 1),
                          "pss": round(pss), "pss_peak": round(peak), "read_share": round(read / size, 4),
                          "load": float(open("/proc/loadavg").read().split()[0])}), flush=True)
        time.sleep(args.interval)
    print(json.dumps({"ended_after": round(time.monotonic() - start), "pss_peak": round(peak)}), flush=True)


if __name__ == "__main__":
    main()
