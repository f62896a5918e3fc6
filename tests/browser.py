"""Harness for driving the unpacked extension in real headless browsers: Debian's Chromium
(through Playwright) and Debian's Firefox ESR (through Marionette).

Shared by tests/test_extension_*.py and bench/extension_bench.py.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
EXTENSION = REPO / "extension"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

SEED_URL = "http://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.html"
FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
GECKO_ID = "companion@topicfeed.invalid"
# A strict policy, as news sites send: the page's own style by nonce, no scripts, no inline anything.
PAGE_CSP = "default-src 'none'; style-src 'nonce-page'; img-src 'self'; base-uri 'none'; form-action 'none'"

ARTICLE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="alternate" type="application/rss+xml" title="Page feed" href="/page-feed.rss">
<style nonce="page">body {{ font: 18px Georgia, serif; margin: 40px; }} aside {{ color: red !important; }}</style></head>
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
    """Answers every path with a plain article page under a strict CSP (what infoworld.com
    resolves to in tests). Request lines may be absolute URIs: Firefox reaches it as a proxy."""

    def __init__(self) -> None:
        class Handler(_QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = ARTICLE_PAGE.format(title="A news article", path=urlsplit(self.path).path,
                                           filler="Lorem ipsum " * 200).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Security-Policy", PAGE_CSP)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


class ServerProxy(_Server):
    """Forwards to the real server, as a slow or hostile network would: ``delays`` holds
    seconds to wait before answering a path that contains the key (a lookup prefix, an API
    path); with ``tamper`` set it changes one related title in lookup answers; ``rewrite``, when
    set, is applied to every lookup answer's JSON (a test's correctly signed hostile answers).
    ``answered`` lists the paths answered so far, in order."""

    def __init__(self, upstream: str) -> None:
        self.tampered = 0
        self.tamper = False
        self.rewrite = None
        self.delays: dict[str, float] = {}
        self.answered: list[str] = []
        proxy = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                delay = max((s for key, s in proxy.delays.items() if key in self.path), default=0)
                time.sleep(delay)  # the slow server under test, not a wait in a test
                request = urllib.request.Request(upstream + self.path, headers={
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")})
                try:
                    with urllib.request.urlopen(request, timeout=10) as resp:
                        status, ctype, body = resp.status, resp.headers.get("Content-Type", ""), resp.read()
                except urllib.error.HTTPError as err:
                    status, ctype, body = err.code, err.headers.get("Content-Type", ""), err.read()
                if proxy.tamper and self.path.startswith("/api/v1/lookup") and status == 200:
                    data = json.loads(body)
                    for article in data.get("value", []):
                        if article.get("related"):
                            article["related"][0]["title"] = "Tampered: " + article["related"][0]["title"]
                            proxy.tampered += 1
                            break
                    body = json.dumps(data).encode()
                if proxy.rewrite and self.path.startswith("/api/v1/lookup") and status == 200:
                    body = json.dumps(proxy.rewrite(json.loads(body)), ensure_ascii=False).encode()
                self.reply(status, ctype, body)
                proxy.answered.append(self.path)

        super().__init__(Handler)


class Backend:
    """What the browsers talk to: the real server in paired mode on ``roots``, the page server
    infoworld.com is mapped to, and a ServerProxy in front of the server (pair through
    ``proxy.url`` to delay or tamper with answers). Stop everything with ``close()``."""

    def __init__(self, instance: Path, roots: list[Path]) -> None:
        from feeds.importer import sync
        from server import create_app, get_store

        from .conftest import LiveServer

        self.instance = instance
        self.app = create_app({}, instance)
        self.store = get_store(self.app)
        sync(self.store, roots)
        self.server = LiveServer(instance)
        self.pages = PageServer()
        self.proxy = ServerProxy(self.server.url)

    def api(self, path: str, token: str) -> dict:
        """What the server says, asked in-process so the live server's log holds only the browsers' requests."""
        resp = self.app.test_client().get(path, base_url=self.server.url, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, (path, resp.status_code)
        return resp.json

    def close(self) -> None:
        self.proxy.close()
        self.pages.close()
        self.server.stop()


def resigned(value, secret: str):
    """``value`` with every object that carries ``secured`` signed again, innermost first, with the
    server's own signing code: what a keyed but hostile (or buggy) server could send."""
    from server.signing import sign_object
    if isinstance(value, list):
        return [resigned(v, secret) for v in value]
    if isinstance(value, dict):
        out = {k: resigned(v, secret) for k, v in value.items()}
        return sign_object(out, secret) if "secured" in value else out
    return value


def launch(playwright, user_data_dir: Path, page_port: int, extension: Path = EXTENSION):
    """A persistent Chromium context with the unpacked extension; returns (context, worker, extension id)."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=[f"--disable-extensions-except={extension}", f"--load-extension={extension}",
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


def add_client(instance: Path, server_url: str, name: str = "browser") -> dict:
    """A new client through the real CLI: {"id", "name", "secret", "token", "pairing", "server"}."""
    out = subprocess.run([sys.executable, "-m", "server", "clients", "add", name, "--server-url", server_url, "--json",
                          "--instance", str(instance)], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def poll(check, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):
    """Call ``check()`` until it returns something truthy; that value, or AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def stop_service_worker(context, extension_id: str):
    """Stop the extension's service worker as Chrome does when it idles (Playwright would keep it
    alive), through CDP on an extension page, and wait until it is down. Returns a function telling whether the worker runs
    (from the browser's target list: Playwright does not attach to a restarted worker, so its
    old Worker handle must not be used afterwards) and the page, to close when done."""
    page = context.new_page()
    page.goto(f"chrome-extension://{extension_id}/options.html")
    # The options page asks the worker for the server's providers as it opens; a stop sent before
    # that message would be undone by it, so wait until the site list is drawn.
    page.locator("#sites li").first.wait_for(timeout=15000)
    cdp = context.new_cdp_session(page)
    cdp.send("ServiceWorker.enable")

    def running() -> bool:
        return any(t["type"] == "service_worker" and extension_id in t["url"]
                   for t in cdp.send("Target.getTargets")["targetInfos"])

    def stopped() -> bool:
        # Another open tab's content script may still wake the worker: stop it again until it stays down.
        cdp.send("ServiceWorker.stopAllWorkers")
        time.sleep(0.2)
        return not running()

    poll(stopped, what="the service worker to stop")
    return running, page


def tab_id(worker, url_part: str) -> int:
    return worker.evaluate(
        "async (part) => (await chrome.tabs.query({})).find(t => (t.url || '').includes(part)).id", url_part)


def tab_state(worker, tab: int) -> dict | None:
    return worker.evaluate("async (id) => (await chrome.storage.session.get(`tab:${id}`))[`tab:${id}`] || null", tab)


class Firefox:
    """Debian's firefox-esr, headless, driven through Marionette, with the extension installed as
    a temporary add-on and www.infoworld.com sent to the local page server by a PAC proxy.
    ``hosts`` sends more host names to local ports the same way (a "remote" server: the port's
    server then receives absolute-URI request lines, which waitress accepts). Optional
    permissions are granted without a prompt, but only from a user input handler, as always."""

    def __init__(self, profile: Path, page_port: int, width: int = 1280, height: int = 900,
                 hosts: dict[str, int] | None = None) -> None:
        with warnings.catch_warnings():  # its dependencies import telnetlib and call distro APIs deprecated upstream
            warnings.simplefilter("ignore", DeprecationWarning)
            from marionette_driver.addons import Addons
            from marionette_driver.marionette import Marionette

        from .conftest import free_port

        port = free_port()
        routes = {"www.infoworld.com": page_port, **(hosts or {})}
        pac = ("function FindProxyForURL(u, host) { var routes = " + json.dumps(routes) + "; "
               "return routes[host] ? 'PROXY 127.0.0.1:' + routes[host] : 'DIRECT'; }")
        prefs = {"marionette.port": port, "extensions.webextOptionalPermissionPrompts": False, "network.proxy.type": 2, "network.proxy.autoconfig_url": "data:text/plain," + pac,
                 "dom.security.https_first": False, "xpinstall.signatures.required": False,
                 "browser.shell.checkDefaultBrowser": False, "app.update.enabled": False,
                 "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.reportingpolicy.firstRun": False,
                 "browser.aboutwelcome.enabled": False, "network.captive-portal-service.enabled": False}
        profile.mkdir(parents=True)
        (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()))
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_HEADLESS_WIDTH=str(width), MOZ_HEADLESS_HEIGHT=str(height))
        self.proc = subprocess.Popen([FIREFOX, "--headless", "--marionette", "-remote-allow-system-access", "--no-remote",
                                      "--profile", str(profile), "about:blank"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.client = Marionette(host="127.0.0.1", port=port)
            self.client.start_session(timeout=60)
            Addons(self.client).install(str(EXTENSION), temp=True)
            with self.client.using_context("chrome"):
                self.host = self.client.execute_script(
                    "return WebExtensionPolicy.getByID(arguments[0]).mozExtensionHostname", script_args=[GECKO_ID])
        except Exception:
            self.proc.kill()
            raise

    def page(self, path: str) -> str:
        """The moz-extension:// URL of an extension page."""
        return f"moz-extension://{self.host}/{path}"

    def wait_for(self, script: str, args: list | None = None, timeout: float = 15.0, what: str = "condition"):
        """Poll a content-context script (``return ...``) until it returns something truthy."""
        return poll(lambda: self.client.execute_script(script, script_args=args or []), timeout, 0.2, what)

    def close(self) -> None:
        try:
            self.client.delete_session()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
