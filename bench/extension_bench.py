"""Time from page load to the extension's panel being visible, in a real headless Chromium
with the unpacked extension, the real server (paired mode) on the corpus, 20 loads each with
the lookup cache cleared (cold) and kept (warm).

Usage: python bench/extension_bench.py [--loads N]   (needs Debian's chromium and ../shared/corpus)
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH, record

sys.path.insert(0, str(BENCH.parent))
from tests.browser import PageServer, launch, pair  # noqa: E402
from tests.conftest import LiveServer  # noqa: E402

from feeds.importer import sync  # noqa: E402
from server import create_app, get_store  # noqa: E402

URL = "http://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.html"
OBSERVER = """
new MutationObserver((_, obs) => {
  if (document.querySelector('[data-topicfeed-host]')) { window.__panelAt = performance.now(); obs.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    corpus = BENCH.parent.parent / "shared" / "corpus"
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        app = create_app({}, instance)
        sync(get_store(app), [corpus / s for s in ("everyday-cc-ai", "everyday-cc-azure", "everyday-cc-powerapps",
                                                    "everyday-cc-powerbi", "seed")])
        server = LiveServer(instance)
        pages = PageServer()
        out = subprocess.run([sys.executable, "-m", "server", "clients", "add", "bench", "--server-url", server.url,
                              "--json", "--instance", str(instance)], capture_output=True, text=True, check=True,
                             cwd=BENCH.parent)
        pairing = json.loads(out.stdout)["pairing"]
        results: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
        try:
            with sync_playwright() as p:
                context, worker, ext_id = launch(p, Path(tmp) / "profile", pages.port)
                pair(context, ext_id, pairing)
                context.add_init_script(OBSERVER)
                for mode in ("cold", "warm"):
                    for _ in range(args.loads):
                        if mode == "cold":
                            worker.evaluate("() => chrome.storage.session.clear()")
                        page = context.new_page()
                        page.goto(URL, wait_until="load")
                        page.locator("[data-testid=topicfeed-panel]").wait_for(timeout=15000)
                        page.wait_for_function("() => window.__panelAt !== undefined")
                        panel_at, load_end = page.evaluate(
                            "() => [window.__panelAt, performance.getEntriesByType('navigation')[0].loadEventEnd]")
                        results[mode].append((panel_at - load_end, panel_at))
                        page.close()
                context.close()
        finally:
            pages.close()
            server.stop()
    lines = ["| lookup cache | p50 load → panel | max load → panel | p50 navigation start → panel |", "|---|---:|---:|---:|"]
    for mode, rows in results.items():
        after_load = [r[0] for r in rows]
        lines.append(f"| {mode} | {statistics.median(after_load):.1f} ms | {max(after_load):.1f} ms | "
                     f"{statistics.median(r[1] for r in rows):.1f} ms |")
    lines += ["", f"{args.loads} loads of an InfoWorld article URL (mapped to a local page) per row; cold clears the "
              "service worker's lookup cache before each load, so every load asks the server and verifies the answer."]
    record("Extension: page load to panel visible (bench/extension_bench.py)", lines)


if __name__ == "__main__":
    main()
