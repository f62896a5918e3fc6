"""Time from page load to the extension's panel being visible, in a real headless Chromium
with the unpacked extension, the real server (paired mode) on the corpus, 20 loads each with
the lookup cache cleared (cold) and kept (warm).

Usage: python bench/extension_bench.py [--loads N] [--baseline REV]   (needs Debian's chromium and the shared corpus:
../shared/corpus or $TOPICFEED_SHARED/corpus)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH, record

sys.path.insert(0, str(BENCH.parent))
from tests.browser import EXTENSION, SEED_URL, Backend, PageServer, add_client, launch, pair  # noqa: E402
from tests.conftest import CORPUS, SITES  # noqa: E402

OBSERVER = """
new MutationObserver((_, obs) => {
  if (document.querySelector('[data-topicfeed-host]')) { window.__panelAt = performance.now(); obs.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""


def measure(p, extension: Path, profile: Path, pages: PageServer, pairing: str, loads: int) -> dict[str, list]:
    """(load end → panel, navigation start → panel) in ms per load, cold and warm, for one extension folder."""
    results: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
    context, worker, ext_id = launch(p, profile, pages.port, extension)
    try:
        pair(context, ext_id, pairing)
        context.add_init_script(OBSERVER)
        for mode in ("cold", "warm"):
            for _ in range(loads):
                if mode == "cold":
                    worker.evaluate("() => chrome.storage.session.clear()")
                page = context.new_page()
                page.goto(SEED_URL, wait_until="load")
                page.locator("[data-testid=topicfeed-panel]").wait_for(timeout=15000)
                page.wait_for_function("() => window.__panelAt !== undefined")
                panel_at, load_end = page.evaluate(
                    "() => [window.__panelAt, performance.getEntriesByType('navigation')[0].loadEventEnd]")
                results[mode].append((panel_at - load_end, panel_at))
                page.close()
    finally:
        context.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--baseline", metavar="REV", help="also measure extension/ as of this git revision, in the same run")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        variants = {"this tree": EXTENSION}
        if args.baseline:
            archive = subprocess.run(["git", "archive", args.baseline, "extension"], cwd=BENCH.parent, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            variants[f"at {args.baseline}"] = Path(tmp) / "extension"
        backend = Backend(Path(tmp) / "instance", [CORPUS / s for s in SITES] + [CORPUS / "seed"])
        pairing = add_client(backend.instance, backend.server.url, "bench")["pairing"]  # direct, not through the proxy
        results = {}
        try:
            with sync_playwright() as p:
                for name, folder in variants.items():
                    results[name] = measure(p, folder, Path(tmp) / f"profile-{len(results)}", backend.pages, pairing,
                                            args.loads)
        finally:
            backend.close()
    lines = ["| extension | lookup cache | p50 load → panel | max load → panel | p50 navigation start → panel |",
             "|---|---|---:|---:|---:|"]
    for name, modes in results.items():
        for mode, rows in modes.items():
            after_load = [r[0] for r in rows]
            lines.append(f"| {name} | {mode} | {statistics.median(after_load):.1f} ms | {max(after_load):.1f} ms | "
                         f"{statistics.median(r[1] for r in rows):.1f} ms |")
    lines += ["", f"{args.loads} loads of an InfoWorld article URL (mapped to a local page) per row; cold clears the "
              "service worker's lookup cache before each load, so every load asks the server and verifies the answer."]
    if args.baseline:
        lines.append(f"Side by side with `--baseline {args.baseline}` on the same server and machine; absolute figures "
                     f"move with the machine's load, compare the rows of one run.")
    record("Extension: page load to panel visible (bench/extension_bench.py)", lines)


if __name__ == "__main__":
    main()
