"""Harness for driving the unpacked extension in a real headless Chromium (Debian's package).

Shared by tests/test_extension_e2e.py and bench/extension_bench.py.
"""
from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTENSION = REPO / "extension"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

ARTICLE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="alternate" type="application/rss+xml" title="Page feed" href="/page-feed.rss">
<style>body {{ font: 18px Georgia, serif; margin: 40px; }} aside {{ color: red !important; }}</style></head>
<body><h1>{title}</h1><p>Stand-in article page served on 127.0.0.1 for {path}.</p>
<p>{filler}</p></body></html>"""


class _QuietHandler(BaseHTTPRequestHandler):
    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server:
    """A ThreadingHTTPServer on a free loopback port, stopped with ``close()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class PageServer(_Server):
    """Answers every path with a plain article page (what infoworld.com resolves to in tests)."""

    def __init__(self) -> None:
        class Handler(_QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = ARTICLE_PAGE.format(title="A news article", path=self.path.split("?")[0],
                                           filler="Lorem ipsum " * 200).encode()
                self.reply(200, "text/html; charset=utf-8", body)

        super().__init__(Handler)


class TamperingProxy(_Server):
    """Forwards to the real server; in lookup answers it changes one related title."""

    def __init__(self, upstream: str) -> None:
        self.tampered = 0
        proxy = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                request = urllib.request.Request(upstream + self.path, headers={
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")})
                try:
                    with urllib.request.urlopen(request, timeout=10) as resp:
                        status, ctype, body = resp.status, resp.headers.get("Content-Type", ""), resp.read()
                except urllib.error.HTTPError as err:
                    status, ctype, body = err.code, err.headers.get("Content-Type", ""), err.read()
                if self.path.startswith("/api/v1/lookup") and status == 200:
                    data = json.loads(body)
                    for article in data.get("value", []):
                        if article.get("related"):
                            article["related"][0]["title"] = "Tampered: " + article["related"][0]["title"]
                            proxy.tampered += 1
                            break
                    body = json.dumps(data).encode()
                self.reply(status, ctype, body)

        super().__init__(Handler)


def launch(playwright, user_data_dir: Path, page_port: int):
    """A persistent Chromium context with the unpacked extension; returns (context, worker, extension id)."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=[f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}",
              f"--host-resolver-rules=MAP www.infoworld.com 127.0.0.1:{page_port}",
              "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
              "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-gpu"],
    )
    worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker", timeout=30000)
    return context, worker, worker.url.split("/")[2]


def pair(context, extension_id: str, pairing: str) -> str:
    """Pair through the options page, as a user would; returns the status text shown."""
    page = context.new_page()
    page.goto(f"chrome-extension://{extension_id}/options.html")
    page.fill("textarea[name=pairing]", pairing)
    page.click("#pair-submit")
    status = page.locator("[data-testid=pair-status]")
    status.filter(has_text="aired").wait_for(timeout=15000)
    text = status.inner_text()
    page.close()
    return text


def tab_id(worker, url_part: str) -> int:
    return worker.evaluate(
        "async (part) => (await chrome.tabs.query({})).find(t => (t.url || '').includes(part)).id", url_part)


def tab_state(worker, tab: int) -> dict | None:
    return worker.evaluate("async (id) => (await chrome.storage.session.get(`tab:${id}`))[`tab:${id}`] || null", tab)
