"""Whether two checkouts import a tree into the same database: every table's rows compared.

Usage: python bench/compare_imports.py --base DIR [SIZE] (default 10000; a corpus-derived tree,
bench/corpus_tree.py). Each checkout runs ``python -m server init`` and ``python -m server import``
into its own fresh instance (SQLite); then every row of every table is read from both, sorted,
and compared. Columns that hold the clock or a random value are left out (named in ``VARYING``).
Prints the tables that differ (with a few example rows) and exits 1 if any do; the outcome is
also appended to bench/RESULTS.md. A performance change must leave this at "identical".
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import BENCH, OUT, real_corpus, record

sys.path.insert(0, str(BENCH.parent))
from feeds.store.rows import all_rows  # noqa: E402

# Per table: the columns that differ between two imports of the same tree at different times.
VARYING = {
    "change_log": {"version"},  # the store version: random
    "feed_changes": {"changed_ts"},  # a feed a taxonomy entry names first is stamped with the clock
    "writer_lease": {"holder", "location", "renewed_ms", "expires_ms"},
}
VARYING_META = {"created", "last_import", "version"}  # meta keys whose values are the clock or random
SKIP = {"alembic_version"}


def import_into(code: Path, content: Path, instance: Path) -> Path:
    """Import ``content`` with the checkout ``code`` into a fresh ``instance``; its SQLite file."""
    shutil.rmtree(instance, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(code)}
    for args in (["init", "--instance", str(instance)], ["import", "--instance", str(instance), str(content)]):
        subprocess.run([sys.executable, "-m", "server", *args], check=True, cwd=code, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return instance / "topicfeed.db"


def table_rows(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows (without the ``VARYING`` columns), sorted."""
    out = {}
    for table, (columns, rows) in all_rows(f"sqlite:///{db}").items():
        if table in SKIP:
            continue
        keep = [k for k, c in enumerate(columns) if c not in VARYING.get(table, ())]
        picked = [tuple(row[k] for k in keep) for row in rows]
        if table == "meta":
            picked = [(key, None if key in VARYING_META else value) for key, value in picked]
        out[table] = sorted(picked, key=repr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("size", nargs="?", type=int, default=10000)
    parser.add_argument("--base", type=Path, required=True, help="the other checkout")
    args = parser.parse_args()
    content = real_corpus(args.size)
    mine = table_rows(import_into(BENCH.parent, content, OUT / f"compare-this-{args.size}"))
    theirs = table_rows(import_into(args.base.resolve(), content, OUT / f"compare-base-{args.size}"))
    lines = []
    for table in sorted(set(mine) | set(theirs)):
        a, b = mine.get(table, []), theirs.get(table, [])
        if a == b:
            lines.append(f"- {table}: {len(a):,} rows, identical")
        else:
            only_a = [r for r in a if r not in set(b)][:2]
            only_b = [r for r in b if r not in set(a)][:2]
            lines.append(f"- {table}: DIFFERENT ({len(a):,} rows here, {len(b):,} in base); "
                         f"only here: {repr(only_a)[:300]}; only in base: {repr(only_b)[:300]}")
        print(lines[-1], flush=True)
    base_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.base, capture_output=True,
                              text=True).stdout.strip()
    here_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH.parent, capture_output=True,
                              text=True).stdout.strip()
    differ = [line for line in lines if "DIFFERENT" in line]
    lines.append("")
    lines.append(f"{'Identical' if not differ else 'NOT identical'}: every table of a {args.size:,}-article import by "
                 f"this tree ({here_rev}) and by base {base_rev} (columns left out: "
                 + "; ".join(f"{t}.{', '.join(sorted(c))}" for t, c in sorted(VARYING.items()))
                 + f"; meta values of {', '.join(sorted(VARYING_META))}).")
    record(f"Imports compared row by row (bench/compare_imports.py, {args.size:,})", lines)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
