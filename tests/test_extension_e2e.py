"""The companion extension in a real headless Chromium, against the real server on the corpus.

infoworld.com resolves to a local page server (--host-resolver-rules), so the manifest's
content-script matches run unchanged. Screenshot: tests/artifacts/extension-panel.png.
"""
from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from server import create_app, get_store
from feeds.importer import sync
from feeds.query import FeedQuery

from .browser import CHROMIUM, PageServer, TamperingProxy, launch, pair, tab_id, tab_state
from .conftest import LiveServer, corpus_roots

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent / "artifacts"
SEED_URL = "http://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.html"


def add_client(instance: Path, server_url: str, name: str = "browser") -> dict:
    out = subprocess.run([sys.executable, "-m", "server", "clients", "add", name, "--server-url", server_url, "--json",
                          "--instance", str(instance)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright
    roots = corpus_roots()
    base = tmp_path_factory.mktemp("e2e")
    instance = base / "instance"
    app = create_app({}, instance)
    sync(get_store(app), roots)
    store = get_store(app)
    server = LiveServer(instance)  # paired mode: the default
    pages = PageServer()
    proxy = TamperingProxy(server.url)
    client = add_client(instance, server.url)
    with sync_playwright() as p:
        context, worker, ext_id = launch(p, base / "profile", pages.port)
        status = pair(context, ext_id, client["pairing"])
        yield {"app": app, "p": p, "base": base, "instance": instance, "server": server, "pages": pages, "proxy": proxy,
               "client": client, "context": context, "worker": worker, "ext_id": ext_id, "pair_status": status,
               "store": store}
        context.close()
    proxy.close()
    pages.close()
    server.stop()


def api(env, path: str) -> dict:
    """What the server says, asked in-process so the live server's log holds only the extension's requests."""
    resp = env["app"].test_client().get(path, base_url=env["server"].url,
                                        headers={"Authorization": f"Bearer {env['client']['token']}"})
    assert resp.status_code == 200
    return resp.json


def public_infoworld_urls(env) -> list[tuple[str, str]]:
    rows = env["store"].recent("provider", "infoworld.com", FeedQuery())
    return [(r.id, r.record.get("webUrl") or r.record["originalUrl"]) for r in rows]


def open_article(env, url: str):
    page = env["context"].new_page()
    page.goto(url)
    return page


def test_pairing_through_the_options_page(env):
    assert env["pair_status"].startswith("Paired with " + env["server"].url)


def test_panel_lists_related_articles_and_topics_of_every_infoworld_record(env):
    urls = public_infoworld_urls(env)
    assert len(urls) >= 2
    for article_id, url in urls:
        expected = api(env, f"/api/v1/articles/{article_id}")
        page = open_article(env, url.replace("https://", "http://"))
        panel = page.locator("[data-testid=topicfeed-panel]")
        panel.wait_for(timeout=15000)
        shown = page.locator("[data-testid=topicfeed-related] a").all_inner_texts()
        assert shown == [r["title"] for r in expected["related"]], article_id
        topics = page.locator("[data-testid=topicfeed-topics] li > span").all_inner_texts()
        assert topics == [t["name"] for t in expected["topics"]]
        hrefs = page.locator("[data-testid=topicfeed-topics] a").evaluate_all("els => els.map(e => e.href)")
        assert hrefs == [t["feeds"]["atom"] for t in expected["topics"]]
        rels = page.locator("[data-testid=topicfeed-related] a").evaluate_all("els => els.map(e => e.rel)")
        assert set(rels) == {"noopener noreferrer"}
        if article_id == "2022-07-18-open-source-isnt-working-for-ai":
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "extension-panel.png"))
            badge = env["worker"].evaluate("async (id) => chrome.action.getBadgeText({tabId: id})", tab_id(env["worker"], "3667433"))
            assert badge == str(len(expected["related"]))
        # the page's own styles do not leak in, and the panel can be dismissed from the keyboard
        assert panel.evaluate("e => getComputedStyle(e).color") != "rgb(255, 0, 0)"
        page.locator("[data-testid=topicfeed-panel] button").focus()
        page.keyboard.press("Enter")
        assert page.locator("[data-testid=topicfeed-panel]").count() == 0
        page.close()


def test_unknown_infoworld_url_shows_nothing(env):
    page = open_article(env, "http://www.infoworld.com/article/1234567/not-an-article-we-know.html")
    worker, tab = env["worker"], tab_id(env["worker"], "1234567")
    page.wait_for_function("() => document.documentElement.hasAttribute('data-topicfeed')")
    for _ in range(100):
        state = tab_state(worker, tab)
        if state:
            break
        page.wait_for_timeout(100)
    assert state["status"] == "unknown"
    assert page.locator("[data-testid=topicfeed-panel]").count() == 0
    page.close()


def test_tracking_parameter_variant_still_matches(env):
    page = open_article(env, SEED_URL + "?utm_source=newsletter&utm_medium=email&fbclid=abc#comments")
    page.locator("[data-testid=topicfeed-panel]").wait_for(timeout=15000)
    assert "Meta goes open source" in page.locator("[data-testid=topicfeed-related]").inner_text()
    page.close()


def test_popup_shows_topics_subscribe_links_and_page_feeds(env):
    page = open_article(env, SEED_URL)
    page.locator("[data-testid=topicfeed-panel]").wait_for(timeout=15000)
    tab = tab_id(env["worker"], "3667433")
    popup = env["context"].new_page()
    popup.goto(f"chrome-extension://{env['ext_id']}/popup.html?tab={tab}")
    popup.locator("[data-testid=popup-topics] li").first.wait_for()
    assert "verified" in popup.locator("[data-testid=popup-status]").inner_text()
    expected = api(env, "/api/v1/articles/2022-07-18-open-source-isnt-working-for-ai")
    topics_text = popup.locator("[data-testid=popup-topics]").inner_text()
    for topic in expected["topics"]:
        assert topic["name"] in topics_text
    links = popup.locator("[data-testid=popup-topics] a.subscribe").evaluate_all("els => els.map(e => e.href)")
    assert links == ["https://feedly.com/i/subscription/feed/" + quote(t["feeds"]["atom"], safe="") for t in expected["topics"]]
    assert popup.locator("[data-testid=popup-related-count]").inner_text() == f"{len(expected['related'])} related articles"
    popup.locator("[data-testid=popup-page-feeds] li").first.wait_for()
    assert "Page feed" in popup.locator("[data-testid=popup-page-feeds]").inner_text()
    popup.close()
    page.close()


def test_tampered_answer_shows_nothing_and_the_popup_says_why(env, tmp_path):
    client = add_client(env["instance"], env["proxy"].url, "proxied")
    context, worker, ext_id = launch(env["p"], tmp_path / "profile", env["pages"].port)
    try:
        assert pair(context, ext_id, client["pairing"]).startswith("Paired with " + env["proxy"].url)
        page = context.new_page()
        page.goto(SEED_URL)
        tab = tab_id(worker, "3667433")
        for _ in range(150):
            state = tab_state(worker, tab)
            if state:
                break
            page.wait_for_timeout(100)
        assert state["status"] == "unverified" and "verification failed" in state["reason"]
        assert env["proxy"].tampered >= 1
        assert page.locator("[data-testid=topicfeed-panel]").count() == 0
        popup = context.new_page()
        popup.goto(f"chrome-extension://{ext_id}/popup.html?tab={tab}")
        status = popup.locator("[data-testid=popup-status]")
        status.filter(has_text="verification failed").wait_for()
        assert "Tampered" not in popup.content()
    finally:
        context.close()


def test_bad_pairing_strings_are_explained(env):
    page = env["context"].new_page()
    page.goto(f"chrome-extension://{env['ext_id']}/options.html")
    status = page.locator("[data-testid=pair-status]")
    page.fill("textarea[name=pairing]", "hello")
    page.click("#pair-submit")
    status.filter(has_text="bad pairing string").wait_for()
    fake = json.loads(base64.urlsafe_b64decode(env["client"]["pairing"].split(":", 1)[1] + "=="))
    for change, expect in (({"token": fake["token"][:-4] + "AAAA"}, "rejected"),
                           ({"server": "http://127.0.0.1:9"}, "unreachable")):
        bad = "topicfeed-pair-v1:" + base64.urlsafe_b64encode(json.dumps(fake | change).encode()).decode().rstrip("=")
        page.fill("textarea[name=pairing]", bad)
        page.click("#pair-submit")
        status.filter(has_text=expect).wait_for(timeout=15000)
    page.close()


def test_server_never_receives_the_page_url(env):
    log = env["server"].access_log()
    lookups = [line for line in log.splitlines() if "/api/v1/lookup" in line]
    assert lookups, "the extension made no lookups"
    for line in lookups:
        assert re.search(r'"GET /api/v1/lookup\?prefix=[0-9a-f]{8}" ', line), line
    assert "infoworld" not in log and "open-source-isnt-working" not in log and "utm_source" not in log


def test_dark_mode_and_per_site_switch(env):
    page = env["context"].new_page()
    page.emulate_media(color_scheme="dark")
    page.goto(SEED_URL)
    panel = page.locator("[data-testid=topicfeed-panel]")
    panel.wait_for(timeout=15000)
    assert panel.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(31, 31, 31)"
    page.close()
    options = env["context"].new_page()
    options.goto(f"chrome-extension://{env['ext_id']}/options.html")
    switch = options.locator("[data-testid='site-infoworld.com']")
    switch.wait_for()
    assert switch.is_checked()
    switch.uncheck()
    options.wait_for_function("async () => (await chrome.storage.local.get('disabledSites')).disabledSites?.includes('infoworld.com')")
    off = env["context"].new_page()
    off.goto(SEED_URL + "?switched=off")
    tab = tab_id(env["worker"], "switched=off")
    for _ in range(100):
        state = tab_state(env["worker"], tab)
        if state:
            break
        off.wait_for_timeout(100)
    assert state["status"] == "disabled" and off.locator("[data-testid=topicfeed-panel]").count() == 0
    switch.check()
    options.wait_for_function("async () => !(await chrome.storage.local.get('disabledSites')).disabledSites?.includes('infoworld.com')")
    off.close()
    options.close()
