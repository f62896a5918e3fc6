"""Helpers shared by the benchmark scripts: synthetic corpora, machine facts, RESULTS.md."""
from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"


def corpus(articles: int, seed: int = 7) -> Path:
    """A synthetic content tree of ``articles`` records, generated once and reused."""
    from feeds.demo import write_demo_content

    path = OUT / f"content-{articles}"
    if not (path / ".complete").exists():
        write_demo_content(path, articles, seed)
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
