"""Helpers shared by the benchmark scripts: synthetic corpora, machine facts, RESULTS.md."""
from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
TREE_WAIT = 3 * 3600  # seconds to wait for a shared tree another process is generating


def corpus(articles: int, seed: int = 7) -> Path:
    """A synthetic content tree of ``articles`` records, generated once and reused."""
    from feeds.demo import write_demo_content

    path = OUT / f"content-{articles}"
    if not (path / ".complete").exists():
        write_demo_content(path, articles, seed)
        (path / ".complete").write_text("ok")
    return path


def real_corpus(articles: int, seed: int = 11) -> Path:
    """A content tree of ``articles`` records derived from the real corpus (bench/corpus_tree.py),
    generated once and reused.

    A shared, pre-generated tree is used read-only and never (re)written: ``bench/out/corpus-N``
    as a symlink to it, or ``$TOPICFEED_TREES/corpus-N`` when that variable is set and the folder
    exists. Another process may still be writing it, so this waits for its ``.complete`` file
    (up to ``TREE_WAIT`` seconds)."""
    from corpus_tree import write_tree

    path = OUT / f"corpus-{articles}"
    trees = os.environ.get("TOPICFEED_TREES")
    shared = path if path.is_symlink() else Path(trees) / f"corpus-{articles}" if trees else None
    if shared is not None and shared.is_dir():
        deadline = time.monotonic() + TREE_WAIT
        while not (shared / ".complete").exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"{shared}: no .complete after {TREE_WAIT} s (is its generation still running?)")
            time.sleep(10)
        return shared.resolve()
    if not (path / ".complete").exists():
        shutil.rmtree(path, ignore_errors=True)
        write_tree(path, articles, seed, processes=os.cpu_count() or 1)
        (path / ".complete").write_text("ok")
    return path


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    return (f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def record(section: str, lines: list[str]) -> None:
    """Print the figures and replace this script's section of RESULTS.md."""
    command = "python " + " ".join([str(Path(sys.argv[0]).resolve().relative_to(BENCH.parent))] + sys.argv[1:])
    body = "\n".join([f"## {section}", "", f"- command: `{command}`", f"- machine: {machine()}",
                      f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "", *lines, ""])
    print(body)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nWritten by the scripts in bench/; each section says how to reproduce it.\n\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(body + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    RESULTS.write_text(text)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (``/proc/PID/task/TID/children``)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in open(f"/proc/{current}/task/{task}/children").read().split()]
        except (OSError, ValueError):
            continue  # the process ended while being read
    return tree


def tree_pss_mb(pid: int) -> float:
    """PSS of ``pid`` and all its descendants, summed (MB): forked workers share pages, so PSS
    counts each shared page once across the tree (``/proc/PID/smaps_rollup``)."""
    total_kb = 0
    for current in process_tree(pid):
        try:
            for line in open(f"/proc/{current}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except (OSError, ValueError):
            continue  # the process ended while being read
    return total_kb / 1024


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; waits for the exit."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pss_mb(pid: int) -> float:
    """PSS of one process (MB), 0 when it is gone."""
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


class PeakSampler:
    """Samples the process tree's PSS every ``interval`` seconds in a thread; ``peak`` in MB
    (``main_peak``: the PSS of ``pid`` alone, at its own peak)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        import threading

        self.pid, self.interval, self.peak, self.main_peak = pid, interval, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_pss_mb(self.pid))
            self.main_peak = max(self.main_peak, pss_mb(self.pid))
            self._stop.wait(self.interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak
