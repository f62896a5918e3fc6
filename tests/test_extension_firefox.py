"""The companion extension in Debian's Firefox ESR (headless, Marionette, temporary add-on),
against the real server on the corpus: the same core checks as the Chromium suite.

www.infoworld.com reaches the local page server through a PAC proxy, so the manifest's
content-script matches run unchanged. Screenshot: tests/artifacts/firefox-panel.png.
"""
from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import pytest

from .browser import FIREFOX, SEED_URL, Backend, Firefox, add_client, resigned
from .conftest import corpus_roots

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent / "artifacts"
SEED_ID = "2022-07-18-open-source-isnt-working-for-ai"
REMOTE_HOST = "topicfeed-server.test"  # not loopback: pairing must ask for the host permission
OTHER_URL = "http://www.infoworld.com/article/3602597/review-microsoft-azure-ai-and-machine-learning-aims-for-the-enterprise.html"

PANEL = """const host = document.querySelector('[data-topicfeed-host]');
const panel = host && host.shadowRoot.querySelector('[data-testid=topicfeed-panel]');
if (!panel) return null;
return {related: Array.from(panel.querySelectorAll('[data-testid=topicfeed-related] a'), a => a.textContent),
        rels: Array.from(panel.querySelectorAll('[data-testid=topicfeed-related] a'), a => a.rel),
        topics: Array.from(panel.querySelectorAll('[data-testid=topicfeed-topics] li > span:first-child'), s => s.textContent),
        color: getComputedStyle(panel).color};"""


@pytest.fixture(scope="module")
def ff(tmp_path_factory):
    if not Path(FIREFOX).exists():
        pytest.fail("firefox-esr is not installed (.ci/run installs Debian's firefox-esr)")
    roots = corpus_roots()
    base = tmp_path_factory.mktemp("firefox")
    backend = Backend(base / "instance", roots)
    try:
        client = add_client(backend.instance, backend.proxy.url, "firefox")
        browser = Firefox(base / "profile", backend.pages.port, hosts={REMOTE_HOST: backend.server.port})
        try:
            yield {"backend": backend, "proxy": backend.proxy, "client": client, "browser": browser}
        finally:
            browser.close()
    finally:
        backend.close()


def api(ff, path: str) -> dict:
    return ff["backend"].api(path, ff["client"]["token"])


def popup_status(ff, url_part: str) -> str:
    """Open the popup as a page for the tab showing ``url_part``; its status line once it has settled."""
    b = ff["browser"]
    b.client.navigate(b.page("popup.html"))
    tab = b.wait_for("""return window.wrappedJSObject.browser.tabs.query({}).then(tabs => {
        const t = tabs.find(t => (t.url || '').includes(arguments[0])); return t ? t.id : null; });""",
                     [url_part], what="the article tab")
    b.client.navigate(b.page(f"popup.html?tab={tab}"))
    return b.wait_for("""const s = document.querySelector('[data-testid=popup-status]').textContent;
        return s && !s.startsWith('Checking') ? s : null;""", what="the popup's status")


@pytest.fixture(scope="module")
def paired(ff):
    b = ff["browser"]
    b.client.navigate(b.page("options.html"))
    b.client.execute_script("""document.querySelector('textarea[name=pairing]').value = arguments[0];
        document.getElementById('pair-submit').click();""", script_args=[ff["client"]["pairing"]])
    status = b.wait_for("""const s = document.querySelector('[data-testid=pair-status]').textContent;
        return s.includes('aired') ? s : null;""", what="the pairing status")
    b.client.open(type="tab", focus=True)  # the article tab; the first tab hosts extension pages
    article_tab = b.client.window_handles[-1]
    return {"status": status, "pages_tab": b.client.window_handles[0], "article_tab": article_tab}


def in_tab(ff, handle: str) -> None:
    ff["browser"].client.switch_to_window(handle)


def test_pairing_through_the_options_page(ff, paired):
    assert paired["status"].startswith("Paired with " + ff["proxy"].url), paired["status"]


def test_panel_on_an_article(ff, paired):
    b = ff["browser"]
    in_tab(ff, paired["article_tab"])
    b.client.navigate(SEED_URL)
    shown = b.wait_for(PANEL, what="the panel")
    expected = api(ff, f"/api/v1/articles/{SEED_ID}")
    assert shown["related"] == [r["title"] for r in expected["related"]]
    assert shown["topics"] == [t["name"] for t in expected["topics"]]
    assert set(shown["rels"]) == {"noopener noreferrer"}
    assert shown["color"] != "rgb(255, 0, 0)", "the page's styles leak into the panel"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "firefox-panel.png").write_bytes(base64.b64decode(b.client.screenshot(format="base64")))


def test_popup_for_the_tab(ff, paired):
    b = ff["browser"]
    in_tab(ff, paired["article_tab"])
    b.client.navigate(SEED_URL)
    b.wait_for(PANEL, what="the panel")
    in_tab(ff, paired["pages_tab"])
    assert "verified" in popup_status(ff, "3667433")
    expected = api(ff, f"/api/v1/articles/{SEED_ID}")
    links = b.wait_for("""const a = Array.from(document.querySelectorAll('[data-testid=popup-topics] a.subscribe'), a => a.href);
        return a.length ? a : null;""", what="subscribe links")
    assert links == ["https://feedly.com/i/subscription/feed/" + quote(t["feeds"]["atom"], safe="") for t in expected["topics"]]
    count = b.client.execute_script("return document.querySelector('[data-testid=popup-related-count]').textContent")
    assert count == f"{len(expected['related'])} related articles"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "firefox-popup.png").write_bytes(base64.b64decode(b.client.screenshot(format="base64")))


def test_unknown_article_shows_nothing(ff, paired):
    b = ff["browser"]
    in_tab(ff, paired["article_tab"])
    b.client.navigate("http://www.infoworld.com/article/1234567/not-an-article-we-know.html")
    b.wait_for("return document.documentElement.hasAttribute('data-topicfeed')", what="the content script")
    in_tab(ff, paired["pages_tab"])
    assert popup_status(ff, "1234567") == "This page is not an article your server knows."
    in_tab(ff, paired["article_tab"])
    assert b.client.execute_script("return document.querySelector('[data-topicfeed-host]')") is None


def test_tampered_answer_is_not_shown(ff, paired):
    b = ff["browser"]
    ff["proxy"].tamper = True
    try:
        in_tab(ff, paired["article_tab"])
        b.client.navigate(OTHER_URL)  # not looked up before: the answer comes through the proxy
        b.wait_for("return document.documentElement.hasAttribute('data-topicfeed')", what="the content script")
        in_tab(ff, paired["pages_tab"])
        status = popup_status(ff, "3602597")
    finally:
        ff["proxy"].tamper = False
    assert ff["proxy"].tampered >= 1
    assert status.startswith("Nothing shown: verification failed"), status
    assert "Tampered" not in b.client.page_source
    in_tab(ff, paired["article_tab"])
    assert b.client.execute_script("return document.querySelector('[data-topicfeed-host]')") is None


def test_options_page_shows_the_pairing_in_readable_text(ff, paired):
    b = ff["browser"]
    in_tab(ff, paired["pages_tab"])
    b.client.navigate(b.page("options.html"))
    state = b.wait_for("""const p = document.querySelector('[data-testid=paired-with]');
        return p.textContent ? [p.textContent, document.querySelector('textarea[name=pairing]').value,
                                getComputedStyle(p).fontSize] : null;""", what="the pairing state")
    assert state == [f"Paired with {ff['proxy'].url} as {ff['client']['id']}.", "", "14px"]
    b.wait_for("return document.querySelectorAll('#sites input').length > 1", what="the server's providers")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "firefox-options.png").write_bytes(base64.b64decode(b.client.screenshot(format="base64")))


def clear_lookups(ff, paired) -> None:
    """Forget cached answers (from an extension page), so the next article goes through the proxy."""
    b = ff["browser"]
    in_tab(ff, paired["pages_tab"])
    b.client.navigate(b.page("options.html"))
    b.client.execute_script("""const s = window.wrappedJSObject.browser.storage.session;
        return s.get(null).then(all => s.remove(Object.keys(all).filter(k => k.startsWith('lookup:')))).then(() => true);""")


def test_signed_hostile_answer_is_text_and_copy_works(ff, paired):
    """A correctly signed answer with markup and a javascript: link: text stays text, only http(s)
    links; the panel's Copy works on this plain-http page (no async clipboard API there)."""
    b = ff["browser"]
    secret = ff["client"]["secret"]
    markup = "<img src=x onerror=alert(1)>"

    def hostile(body: dict) -> dict:
        for article in body.get("value", []):
            if article.get("id") == SEED_ID:
                article["related"][0]["title"] = markup
                article["related"][1]["title"], article["related"][1]["link"] = "A javascript link", "javascript:alert(3)"
        return resigned(body, secret)

    clear_lookups(ff, paired)
    ff["proxy"].rewrite = hostile
    try:
        in_tab(ff, paired["article_tab"])
        b.client.navigate(SEED_URL + "?utm_content=hostile-ff")
        shown = b.wait_for(PANEL, what="the panel")
    finally:
        ff["proxy"].rewrite = None
        clear_lookups(ff, paired)
    in_tab(ff, paired["article_tab"])
    assert shown["related"][0] == markup and "A javascript link" not in shown["related"]
    inside = b.client.execute_script("""const root = document.querySelector('[data-topicfeed-host]').shadowRoot;
        return [root.querySelectorAll('img, script').length, Array.from(root.querySelectorAll('a'), a => a.getAttribute('href'))];""")
    assert inside[0] == 0 and all(h.startswith(("http://", "https://")) for h in inside[1]), inside
    copy = b.client.execute_script(
        "return document.querySelector('[data-topicfeed-host]').shadowRoot.querySelector('button.copy')")
    copy.click()
    assert b.wait_for("""const t = document.querySelector('[data-topicfeed-host]').shadowRoot.querySelector('button.copy').textContent;
        return t !== 'Copy' ? t : null;""", what="the copy result") == "Copied"


def test_in_page_navigation_follows_the_new_article(ff, paired):
    b = ff["browser"]
    in_tab(ff, paired["article_tab"])
    b.client.navigate(SEED_URL + "?utm_content=spa-ff")
    b.wait_for(PANEL, what="the panel")
    expected = [r["title"] for r in api(ff, "/api/v1/articles/2021-01-11-review-microsoft-azure-ai-and-machine-learning-aims-for-the-enterprise")["related"]]
    b.client.execute_script("history.pushState({}, '', arguments[0])", script_args=[OTHER_URL.split("infoworld.com")[1]])
    shown = b.wait_for(PANEL.replace("if (!panel) return null;", "if (!panel) return null;\n"
                                     "if (panel.querySelector('[data-testid=topicfeed-related] a')?.textContent !== arguments[0]) return null;"),
                       [expected[0]], what="the new article's panel")
    assert shown["related"] == expected


def test_pairing_with_a_remote_server_asks_for_its_permission_within_the_click(ff, paired):
    """A server that is not on loopback needs its host permission, which Firefox grants only
    while the Pair click is being handled (no await before the request)."""
    b = ff["browser"]
    remote = add_client(ff["backend"].instance, f"http://{REMOTE_HOST}:{ff['backend'].server.port}", "remote")
    in_tab(ff, paired["pages_tab"])
    b.client.navigate(b.page("options.html"))
    try:
        b.client.execute_script("document.querySelector('textarea[name=pairing]').value = arguments[0];",
                                script_args=[remote["pairing"]])
        b.client.execute_script("return document.getElementById('pair-submit')").click()  # a real user click
        status = b.wait_for("""const s = document.querySelector('[data-testid=pair-status]').textContent;
            return s && !s.startsWith('Checking') ? s : null;""", what="the pairing status")
        assert status.startswith(f"Paired with http://{REMOTE_HOST}:"), status
        granted = b.client.execute_script("return window.wrappedJSObject.browser.permissions.getAll().then(p => p.origins)")
        assert f"http://{REMOTE_HOST}/*" in granted
    finally:
        b.client.execute_script("""document.querySelector('textarea[name=pairing]').value = arguments[0];
            document.getElementById('pair-submit').click();""", script_args=[ff["client"]["pairing"]])
        b.wait_for("""return document.querySelector('[data-testid=paired-with]').textContent.includes(arguments[0])""",
                   [ff["proxy"].url], what="the original pairing back")
