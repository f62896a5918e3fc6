"""Write → visible across processes (issue 15 part 2, issue 11): a curator write on the writer
process until a reader process (another `topicfeed serve` on the same index, its own instance
folder) serves it in the topic feed, under a wrk load of cached feed polls on the reader, for
``version_ttl`` values side by side in one run (1.0 s, the old default, and 0.25 s, the new one).

Each round: PUT an article (moving it into one of the largest topics) on the writer, then poll
that topic's Atom feed on the reader every 5 ms until the title shows; the figure is from the
PUT's answer to the first poll that shows it. Also reported: the same on the writer itself.

Usage: python bench/visible_bench.py [--instance bench/out/import-instance-10000]
                                     [--corpus bench/out/corpus-10000] [--seconds 20]
(needs Debian's wrk; the instance is copied to bench/out/visible-<name>, never modified)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import OUT, record
from mixed_bench import Server, loadavg, pct, wrk_script

REPO = Path(__file__).resolve().parents[1]
CONNECTIONS = 32


def prepare(source: Path, corpus: Path) -> tuple[Path, Path, str, str]:
    """(writer instance, reader instance, index URL, admin token): a copy of the imported index
    shared by a writer and a reader with their own instance folders and the same keys."""
    base = OUT / f"visible-{source.name}"
    writer, reader, writes = base / "writer", base / "reader", base / "writes"
    if not (base / "topicfeed.db").exists():
        shutil.rmtree(base, ignore_errors=True)
        writer.mkdir(parents=True)
        reader.mkdir()
        writes.mkdir()
        shutil.copy2(source / "topicfeed.db", base / "topicfeed.db")
        shutil.copy2(source / "keys.json", writer / "keys.json")
        shutil.copy2(source / "keys.json", reader / "keys.json")
    index = f"sqlite:///{base / 'topicfeed.db'}"
    shared = f'database_url = "{index}"\npublic_base_url = "http://bench.example"\napi_access = "public"\n'
    (writer / "config.toml").write_text(f'role = "writer"\ncontent_dirs = ["{corpus}", "{writes}"]\n' + shared)
    (reader / "config.toml").write_text('role = "reader"\nwriter_url = "http://writer.example"\n' + shared)
    token = subprocess.run([sys.executable, "-m", "server", "admin-token", "--instance", str(writer)],
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=True)
    return writer, reader, index, token.stdout.strip()


def phase(writer_dir: Path, reader_dir: Path, token: str, ttl: float, seconds: int) -> dict[str, float]:
    env = {"TOPICFEED_VERSION_TTL": str(ttl)}
    writer = Server(writer_dir, env, f"visible-writer-{ttl}")
    reader = Server(reader_dir, env, f"visible-reader-{ttl}")
    try:
        topics = json.loads(reader.get("/api/v1/topics")[2])["value"]
        largest = sorted(topics, key=lambda t: -t.get("count", 0))[:24]
        paths = [f"/feeds/topics/{t['slug']}.{ext}" for t in largest for ext in ("atom", "rss", "json")]
        for path in paths:
            reader.get(path)
            writer.get(path)
        script = wrk_script(paths, [f"{random.Random(i).getrandbits(32):08x}" for i in range(200)])
        load = subprocess.Popen(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s",
                                 str(script), reader.url], stdout=subprocess.PIPE, text=True)
        load_start = loadavg()
        across, here, n = [], [], 0
        rng = random.Random(3)
        deadline = time.monotonic() + seconds - 1
        while time.monotonic() < deadline:
            n += 1
            topic = rng.choice(largest)
            title = f"Visible bench {ttl} {n}"
            body = json.dumps({"title": title, "publishedDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "webUrl": f"https://bench.example/visible/{n % 8}", "topics": [topic["name"]],
                               "provider": {"name": "Bench", "domain": "bench.example"}}).encode()
            status, _, _ = writer.request("PUT", f"/api/v1/articles/visible-bench-{n % 8}", body,
                                       {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            answered = time.monotonic()
            if status not in (200, 201):
                continue
            seen: dict[str, float] = {}

            def poll(server: Server, name: str) -> None:
                while time.monotonic() - answered < 30:
                    if title.encode() in server.get(f"/feeds/topics/{topic['slug']}.atom")[2]:
                        seen[name] = time.monotonic() - answered
                        return
                    time.sleep(0.005)

            pollers = [threading.Thread(target=poll, args=(reader, "reader")),
                       threading.Thread(target=poll, args=(writer, "writer"))]
            for t in pollers:
                t.start()
            for t in pollers:
                t.join()
            if "reader" in seen:
                across.append(seen["reader"])
            if "writer" in seen:
                here.append(seen["writer"])
            time.sleep(0.2)
        out = load.communicate(timeout=seconds + 60)[0]
        rps = next((float(line.split()[1]) for line in out.splitlines() if line.strip().startswith("Requests/sec:")), 0.0)
        return {"writes": len(across), "across_p50": pct(across, 0.5) * 1000, "across_p99": pct(across, 0.99) * 1000,
                "across_max": max(across, default=float("nan")) * 1000,
                "here_p50": pct(here, 0.5) * 1000, "here_p99": pct(here, 0.99) * 1000, "rps": rps,
                "load_start": float(load_start), "load_end": float(loadavg())}
    finally:
        reader.stop()
        writer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instance", type=Path, default=OUT / "import-instance-10000")
    parser.add_argument("--corpus", type=Path, default=OUT / "corpus-10000")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    writer, reader, _, token = prepare(args.instance.resolve(), args.corpus.resolve())
    rows = {ttl: phase(writer, reader, token, ttl, args.seconds) for ttl in (1.0, 0.25)}
    lines = ["| version_ttl | writes | write → visible on the reader p50 / p99 / max | on the writer p50 / p99 | "
             "reader req/s under the load | load avg (start → end) |", "|---:|---:|---:|---:|---:|---:|"]
    for ttl, r in rows.items():
        lines.append(f"| {ttl:g} s | {r['writes']} | {r['across_p50']:.0f} / {r['across_p99']:.0f} / {r['across_max']:.0f} ms | "
                     f"{r['here_p50']:.0f} / {r['here_p99']:.0f} ms | {r['rps']:,.0f} | "
                     f"{r['load_start']:.1f} → {r['load_end']:.1f} |")
    old, new = rows.values()
    lines += ["", f"Ratio 0.25 s / 1.0 s: across-process visible p50 {new['across_p50'] / max(old['across_p50'], 1e-9):.2f}×, "
              f"p99 {new['across_p99'] / max(old['across_p99'], 1e-9):.2f}×.", "",
              f"Two `topicfeed serve` processes (granian, 2 threads each) on one SQLite index copied from "
              f"{args.instance.name}: a writer (role writer) and a reader (role reader, its own instance folder); wrk "
              f"-t2 -c{CONNECTIONS} -d{args.seconds}s on the reader (55 % topic feeds, 30 % 304s, 15 % lookups); a "
              "curator PUT on the writer every ~0.2 s plus the time to see it, polled every 5 ms on both processes. "
              "Both phases in one run; the machine is shared (load average in the last column)."]
    record(f"Write → visible across processes, version_ttl 1.0 vs 0.25 s ({args.instance.name}, bench/visible_bench.py)",
           lines)


if __name__ == "__main__":
    main()
