"""Probe latency while slow clients (one header byte every 2 s) hold connections open.

Usage: PYTHONPATH=. python bench/slow_clients_bench.py [--slow 150 400] [--probes 20]
Runs `topicfeed serve` (the default server, with the connection/header/body limits from the settings)
on the golden test content and times fresh-connection GETs of /healthz and /feeds/all.atom.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import BENCH, record

sys.path.insert(0, str(BENCH.parent))
from feeds.importer import sync  # noqa: E402
from server import create_app, get_store  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.slowclients import SlowClients, probe  # noqa: E402

CONTENT = BENCH.parent / "tests" / "fixtures" / "golden-content"


def measure(url: str, probes: int) -> tuple[float, float]:
    """(p50, max) milliseconds of ``probes`` fresh-connection requests."""
    times = [probe(url, timeout=120) * 1000 for _ in range(probes)]
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, nargs="+", default=[150, 400])
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        app = create_app({}, instance)
        sync(get_store(app), [CONTENT])
        get_store(app).close()
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(BENCH.parent), "TOPICFEED_API_ACCESS": "public"}
        server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--instance", str(instance), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            rows = []
            for count in [0, *args.slow]:
                slow = SlowClients(port, count) if count else None
                try:
                    time.sleep(3 if count else 0)
                    health = measure(url + "/healthz", args.probes)
                    feed = measure(url + "/feeds/all.atom", args.probes)
                    still_open = slow.open_count() if slow else 0
                finally:
                    if slow:
                        slow.close()
                rows.append(f"| {count} ({still_open} still open) | {health[0]:.1f} ms | {health[1]:.1f} ms "
                            f"| {feed[0]:.1f} ms | {feed[1]:.1f} ms |")
        finally:
            server.terminate()
            server.wait()
    record("Probe latency under slow clients (bench/slow_clients_bench.py)", [
        "| slow clients | /healthz p50 | /healthz max | /feeds/all.atom p50 | max |", "|---|---:|---:|---:|---:|", *rows, "",
        f"{args.probes} fresh-connection probes per cell while the slow clients each send one header byte every 2 s; "
        "default limits (connection_limit 500, header_timeout 30 s)."])


if __name__ == "__main__":
    main()
