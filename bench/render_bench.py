"""Cold render latency of a 50-entry topic feed (query + feedgen + HTTP layer, cache bypassed)
at 10k and 100k corpus-derived articles: the index must keep it flat as the store grows.

This tree is measured twice: with its entry cache (``feeds/entrycache.py``) emptied before
every render (nothing reused: every entry built), and warm (every entry kept from an earlier
render of that format, as when other feeds or an earlier version of this one showed them).

With ``--base COMMIT`` the same cold renders also run with that commit's code (extracted with
``git archive`` to $TMPDIR/topicfeed-base-<commit>, on a copy of the instance downgraded to its schema),
one after the other in this run, so the two are compared under the same machine load.

Usage: python bench/render_bench.py [--base 63c6736] [--sizes 10000,100000] [--rounds 200] [--title SUFFIX]
(prefix with ``taskset -c 0`` for one core: the measuring subprocesses inherit it)
(reuses bench/import_bench.py's instances, else imports)
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH, OUT, record

ROUNDS = 200
REPO = BENCH.parent

MEASURE = r'''
import json, statistics, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from feeds.importer import sync
from server import create_app, get_store
from server.httpcache import RenderCache
instance, n, rounds, mode = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[4]), sys.argv[5]
app = create_app({"API_ACCESS": "public"}, instance)
store = get_store(app)
if store.stats()["articles"] != n:
    from common import real_corpus
    sync(store, [real_corpus(n)])
client = app.test_client()
app.extensions["topicfeed.cache"] = RenderCache(store, 0, 3600)  # cold: it keeps nothing (every get misses)
entries = app.extensions.get("topicfeed.entries")  # absent in code before the entry cache
assert (entries is None) == (mode == "plain"), mode
out = {}
for ext in ("atom", "rss", "json"):
    samples, cpu = [], []
    client.get(f"/feeds/topics/ai.{ext}")  # warm-up, untimed (for "warm": keeps every entry)
    for _ in range(rounds):
        if mode == "empty":
            entries.clear()  # untimed: the render below builds every entry
        start, start_cpu = time.perf_counter(), time.thread_time()
        resp = client.get(f"/feeds/topics/ai.{ext}")
        samples.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        assert resp.status_code == 200
    samples.sort()
    out[ext] = statistics.median(samples) * 1000
    out[ext + "_p95"] = samples[int(len(samples) * 0.95)] * 1000
    out[ext + "_cpu"] = statistics.median(cpu) * 1000
    out[ext + "_sha"] = __import__("hashlib").sha256(resp.get_data()).hexdigest()
print(json.dumps(out))
'''


def measure(code: Path, instance: Path, n: int, rounds: int, mode: str = "plain") -> dict[str, float]:
    """Cold-render figures of ``code``'s tree on ``instance`` (a subprocess: its own imports);
    ``mode``: ``plain`` (code without an entry cache), ``empty`` or ``warm`` (its entry cache)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(instance), str(n), str(code), str(rounds), mode],
                         env={"PYTHONPATH": f"{code}:{BENCH}", "PATH": "/usr/bin:/bin"}, cwd=BENCH,
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def base_tree(commit: str) -> tuple[Path, str]:
    """The code of ``commit`` (extracted once, outside the repository: tests/test_layers.py reads
    every source file under it) and its schema head revision."""
    tree = Path(tempfile.gettempdir()) / f"topicfeed-base-{commit}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        (tree / ".complete").write_text("ok")
    head = subprocess.run([sys.executable, "-c", "from feeds.store import migrate; print(migrate.HEAD)"],
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          check=True).stdout.strip()
    return tree, head


def base_instance(instance: Path, head: str) -> Path:
    """A copy of ``instance`` downgraded to the base code's schema revision."""
    from feeds.store import downgrade_index

    copy = OUT / f"{instance.name}-at-{head}"
    if not (copy / "topicfeed.db").exists():
        shutil.copytree(instance, copy)
        downgrade_index(f"sqlite:///{copy / 'topicfeed.db'}", head)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", help="also measure this commit's code, side by side")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="cold renders per format and size")
    parser.add_argument("--title", default="", help="appended to the RESULTS.md section title (e.g. one core)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    sys.path.insert(0, str(REPO))
    empty, warm = "this tree, entry cache empty", "this tree, entry cache warm"
    runs: dict[str, dict[int, dict[str, float]]] = {empty: {}, warm: {}}
    base = base_tree(args.base) if args.base else None
    if base:
        runs[f"base {args.base}"] = {}
    for n in sizes:  # the runs one after the other for each size, so they share the machine's load
        instance = OUT / f"import-instance-{n}"
        runs[empty][n] = measure(REPO, instance, n, args.rounds, "empty")
        runs[warm][n] = measure(REPO, instance, n, args.rounds, "warm")
        if base:
            runs[f"base {args.base}"][n] = measure(base[0], base_instance(instance, base[1]), n, args.rounds)
    small, large = sizes[0], sizes[-1]
    lines = [f"| code | format | p50 at {small:,} | p50 at {large:,} | p95 at {large:,} | ratio | "
             f"p50 CPU time at {small:,} | p50 CPU time at {large:,} |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        for ext in ("atom", "rss", "json"):
            lo, hi = run[small], run[large]
            lines.append(f"| {name} | {ext} | {lo[ext]:.2f} ms | {hi[ext]:.2f} ms | {hi[ext + '_p95']:.2f} ms | "
                         f"{hi[ext] / lo[ext]:.2f} | {lo[ext + '_cpu']:.2f} ms | {hi[ext + '_cpu']:.2f} ms |")
    if base:
        name = f"base {args.base}"
        same = all(runs[mine][n][f"{e}_sha"] == runs[name][n][f"{e}_sha"]
                   for mine in (empty, warm) for n in sizes for e in ("atom", "rss", "json"))
        cpu = {key: sum(run[large][e + "_cpu"] for e in ("atom", "rss", "json")) for key, run in runs.items()}
        lines += ["", f"CPU time / base's, summed over the three formats at {large:,}: entry cache empty "
                  f"{cpu[empty] / cpu[name]:.2f}x, warm {cpu[warm] / cpu[name]:.2f}x. Documents (both runs of this tree) "
                  f"byte-identical to the base's: {'yes' if same else 'NO (the instances differ or the output changed)'}."]
    lines += ["", f"{args.rounds} cold renders (after one untimed) each of /feeds/topics/ai.<ext> (50 entries) of the corpus-derived trees through "
              "the Flask test client, with a render cache that keeps nothing. Targets: p50 <= 5 ms, ratio <= 1.5. CPU time: "
              "the request thread's own (time.thread_time), which the machine's load inflates less than wall time. "
              f"Load average at the end: {open('/proc/loadavg').read().split()[1]} (the machine is shared)."]
    record("Cold feed render latency, entry cache empty and warm (bench/render_bench.py)"
           + (f", {args.title}" if args.title else ""), lines)


if __name__ == "__main__":
    main()
