"""Content sync delay: from a file written under a running `topicfeed import --watch` to the change
being in the feeds (added, edited, removed), with the quiet period set by --debounce.

    python bench/watch_bench.py [--articles 5000] [--debounce 1.0] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import corpus, record  # noqa: E402
from server import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def record_text(title: str, n: int) -> str:
    return (f"---\ntitle: {title}\nexcerpt: Bench.\npublishedDateTime: '2024-05-06T07:08:09Z'\n"
            f"webUrl: https://www.infoworld.com/article/{n}/bench.html\ntype: article\n"
            "provider:\n  name: InfoWorld\n  domain: infoworld.com\ntopics:\n- AI\n---\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--debounce", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    root = work / "content"
    shutil.copytree(corpus(args.articles), root)
    instance = work / "instance"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOPICFEED_WATCH_DEBOUNCE": str(args.debounce)}
    log = (work / "watch.log").open("w")
    watcher = subprocess.Popen([sys.executable, "-m", "server", "--instance", str(instance), "import", "--watch", str(root)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while "watching" not in (work / "watch.log").read_text():
            time.sleep(0.1)
        client = create_app({"VERSION_TTL": 0}, instance).test_client()
        delays: dict[str, list[float]] = {"added": [], "edited": [], "removed": []}

        def until(kind: str, predicate) -> None:
            start = time.monotonic()
            while not predicate(client.get("/feeds/all.atom?limit=200").get_data(as_text=True)):
                time.sleep(0.05)
            delays[kind].append(time.monotonic() - start)

        for n in range(args.rounds):
            path = root / "_news" / f"2024-05-06-bench-{n}.md"
            path.write_text(record_text(f"Bench added {n}", n))
            until("added", lambda feed: f"Bench added {n}" in feed)
            path.write_text(record_text(f"Bench edited {n}", n))
            until("edited", lambda feed: f"Bench edited {n}" in feed)
            path.unlink()
            until("removed", lambda feed: f"Bench edited {n}" not in feed)
    finally:
        watcher.terminate()
        watcher.wait(30)
        log.close()
    record(f"Content sync delay with import --watch (bench/watch_bench.py)", [
        f"- {args.articles:,} articles indexed, quiet period (watch_debounce) {args.debounce} s, {args.rounds} rounds",
        *(f"- {kind}: median {statistics.median(v):.2f} s (max {max(v):.2f} s) from the write to the feed"
          for kind, v in delays.items()),
        "- the delay is the quiet period plus one incremental import (a tree scan of all files, then the changed ones)",
    ])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
