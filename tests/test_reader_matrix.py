"""The real-client matrix (issue 10): the served corpus read by the feed readers people use —
newsboat, sfeed, rss2email, feedparser, the ``reader`` library and rss-parser (Node).

One server and one pass per client for the whole module (readers are slow to start). Every
client parses every topic feed, all.* and a provider feed; the fields it has (title, link,
date, author, category names, image, an excerpt with ``&``) must match the source record; the
clients that keep state pick up a backdated insert and an edit made through the curator API on
their next refresh, and the server's access log shows they sent validators (a 304 on an
unchanged refresh first, so the check cannot pass vacuously). The run writes the client ×
check table to ``bench/READERS.md``.
"""
from __future__ import annotations

import email
import email.policy
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import urllib.request
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from feeds.article import article_link, entry_id, first_image
from feeds.importer import sync
from feeds.query import FeedQuery
from server import create_app, get_store
from server.cli import main as cli

from .conftest import REPO, LiveServer, corpus_roots

pytestmark = pytest.mark.reader

SAMPLE = "2019-12-19-12-in-1-facebook-ais-new-framework-tackles-multiple-vision-and-language-tasks"
EDITED = "2014-10-20-beckers-health-it-and-cio-report-e-newsletter"  # an & excerpt, retitled by the curator
INSERT = {"title": "Backdated & matrix — “quotes” 🤖 שלום עולם",
          "excerpt": "Health IT & CIO <tag> stays text, &amp; stays literal, \"quoted\", 🤖, مرحبا بالعالم",
          "publishedDateTime": "2019-01-05T10:00:00Z", "type": "article",
          "webUrl": "https://www.infoworld.com/article/1111111/backdated-matrix-story.html",
          "images": [{"url": "https://images.example.org/matrix/backdated.png", "width": 640, "height": 320}],
          "provider": {"name": "InfoWorld", "domain": "infoworld.com"}, "topics": ["AI"]}
NEW_TITLE = "Becker's Health IT & CIO Report — retitled"
CLIENTS = ["newsboat", "sfeed", "rss2email", "feedparser", "reader", "rss-parser"]
CHECKS = ["parses every feed", "title", "link", "date", "author", "categories", "image", "excerpt with &",
          "OPML titles", "insert + edit on refresh", "sent validators"]
RESULTS: dict[tuple[str, str], str] = {}
NO_FIELD = {
    ("newsboat", "categories"): "no field (not stored)",
    ("rss2email", "categories"): "no field",
    ("reader", "categories"): "no field",
    ("sfeed", "OPML titles"): "no OPML import",
    ("sfeed", "insert + edit on refresh"): "stateless (refetches)",
    ("sfeed", "sent validators"): "stateless",
    ("feedparser", "insert + edit on refresh"): "library without storage",
    ("feedparser", "sent validators"): "library without storage",
    ("rss-parser", "insert + edit on refresh"): "library without storage",
    ("rss-parser", "sent validators"): "library without storage",
    ("rss-parser", "OPML titles"): "no OPML import",
    ("reader", "OPML titles"): "no OPML import",
    ("feedparser", "OPML titles"): "no OPML import",
}


def record(client: str, check: str, ok: bool, detail: str = "", passed: str = "✓") -> None:
    RESULTS[(client, check)] = (passed if ok else "✗ " + detail[:80])


def text_of(markup: str) -> str:
    """What a reader shows for an HTML fragment: tags dropped, entities decoded once."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup or "")).replace("\xa0", " ")


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The corpus copied (curator writes land in an extra root), imported, served over HTTP."""
    base = tmp_path_factory.mktemp("matrix")
    roots = []
    for root in corpus_roots():
        roots.append(base / root.name)
        shutil.copytree(root, roots[-1])
    roots.append(base / "curated")
    roots[-1].mkdir()
    instance = base / "instance"
    app = create_app({}, instance)
    sync(get_store(app), roots)
    store = get_store(app)
    rows = {r.id: r for r in store.recent("all", None, FeedQuery(limit=200))}
    expected = {"topic_names": store.topic_names(), "provider_names": store.provider_names(), "rows": rows,
                "topics": [t.slug for t in store.topics() if t.count]}
    store.close()
    token = CliRunner().invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    server = LiveServer(instance, {"TOPICFEED_API_ACCESS": "public", "TOPICFEED_CONTENT_DIRS": os.pathsep.join(map(str, roots)),
                                   "TOPICFEED_VERSION_TTL": "0"})
    yield {"server": server, "url": server.url, "admin": token, "roots": roots, "base": base, **expected}
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def write_table():
    yield
    if not RESULTS:
        return
    lines = ["# Feed readers × checks", "",
             "Written by `tests/test_reader_matrix.py` on every run (do not edit by hand): the served corpus "
             "read by each client. ✓ = matches the source record; ✗ = wrong; other text = the client has no "
             "such field or feature.", "",
             "| check | " + " | ".join(CLIENTS) + " |", "|---|" + "---|" * len(CLIENTS)]
    for check in CHECKS:
        cells = [RESULTS.get((c, check)) or NO_FIELD.get((c, check), "not run") for c in CLIENTS]
        lines.append(f"| {check} | " + " | ".join(cells) + " |")
    (REPO / "bench" / "READERS.md").write_text("\n".join(lines) + "\n")


def feed_paths(served) -> list[str]:
    """Every topic feed (Atom: what the OPML lists), all.* and one provider feed."""
    return ([f"/feeds/topics/{s}.atom" for s in served["topics"]] + ["/feeds/all.rss", "/feeds/all.atom",
            "/feeds/providers/infoworld.com.rss", "/feeds/providers/medium.com.atom"])


def expected_fields(served, article_id: str) -> dict:
    row = served["rows"][article_id]
    r = row.record
    domain = str(r["provider"].get("domain") or "").lower()
    return {"title": r["title"], "link": article_link(r),
            "date": datetime.fromisoformat(r["publishedDateTime"].replace("Z", "+00:00")).astimezone(timezone.utc),
            "author": served["provider_names"].get(domain) or r["provider"]["name"],
            "categories": {served["topic_names"][s] for s in row.topics},
            "image": first_image(r)["url"], "excerpt": r["excerpt"].strip()}


def check_fields(client: str, got: dict, want: dict) -> None:
    """Compare what a client understood of the sample entry with the record, field by field."""
    for field in ("title", "link", "date", "author", "categories", "image"):
        if (client, field) in NO_FIELD:
            continue
        record(client, field, got.get(field) == want[field], f"{got.get(field)!r}")
    if (client, "excerpt with &") not in NO_FIELD:
        shown = squash(got.get("excerpt") or "")
        record(client, "excerpt with &", squash(want["excerpt"]) in shown, shown[:60])


def log_since(served, offset: int) -> str:
    return served["server"].access_log()[offset:]


def log_offset(served) -> int:
    return len(served["server"].access_log())


def curator(served, method: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(served["url"] + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {served['admin']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


# -- stateless parsers --------------------------------------------------------------------------

def test_feedparser(served):
    want = expected_fields(served, SAMPLE)
    bad = []
    for path in feed_paths(served):
        feed = feedparser.parse(urllib.request.urlopen(served["url"] + path, timeout=30).read())
        if feed.bozo or not feed.feed.get("title") or not feed.feed.get("image") and not feed.feed.get("icon"):
            bad.append(path)
    record("feedparser", "parses every feed", not bad, ", ".join(bad))
    for ext in ("rss", "atom"):
        feed = feedparser.parse(urllib.request.urlopen(f"{served['url']}/feeds/all.{ext}?limit=200", timeout=30).read())
        e = next(e for e in feed.entries if e.id == entry_id(SAMPLE))
        summary = e.summary if e.summary_detail.type == "text/plain" else text_of(e.summary)
        got = {"title": e.title, "link": e.link, "author": e.get("author"),
               "date": datetime(*e.published_parsed[:6], tzinfo=timezone.utc),
               "categories": {t.term for t in e.get("tags", [])},
               "image": next((x.href for x in e.get("enclosures", []) if x.type.startswith("image/")), None),
               "excerpt": summary}
        check_fields("feedparser", got, want)
        assert len(e.get("authors", [])) == 1, e.get("authors")  # one author, not <author> plus dc:creator
    assert all(v == "✓" for (c, _), v in RESULTS.items() if c == "feedparser"), RESULTS


def test_rss_parser(served):
    node_dir = REPO / "tests" / "node"
    if not (node_dir / "node_modules" / "rss-parser").exists():
        pytest.fail("rss-parser is not installed: .ci/run runs `npm ci` in tests/node")
    # rss-parser reads categories and enclosures from RSS only (its Atom support has neither)
    urls = [served["url"] + p for p in feed_paths(served)] + [f"{served['url']}/feeds/all.rss?limit=200"]
    proc = subprocess.run(["node", str(node_dir / "parse.mjs"), *urls], capture_output=True, text=True, timeout=120,
                          cwd=node_dir)
    parsed = json.loads(proc.stdout)
    bad = [u for u, f in parsed.items() if f.get("error") or not f.get("title")]
    record("rss-parser", "parses every feed", not bad, ", ".join(bad))
    want = expected_fields(served, SAMPLE)
    item = next(i for i in parsed[urls[-1]]["items"] if i["id"] == entry_id(SAMPLE))
    cats = {c if isinstance(c, str) else (c.get("$", {}).get("term") or c.get("_")) for c in item["categories"]}
    got = {"title": item["title"], "link": item["link"], "author": item["author"],
           "date": datetime.fromisoformat(item["isoDate"].replace("Z", "+00:00")), "categories": cats,
           "image": (item["enclosure"] or {}).get("url"), "excerpt": text_of(item["summary"] or item["content"])}
    check_fields("rss-parser", got, want)
    assert all(v == "✓" for (c, _), v in RESULTS.items() if c == "rss-parser"), {k: v for k, v in RESULTS.items() if k[0] == "rss-parser"}


def sfeed_rows(data: bytes) -> list[list[str]]:
    out = subprocess.run(["sfeed"], input=data, capture_output=True, timeout=60).stdout.decode()
    return [line.split("\t") for line in out.splitlines() if line]


def test_sfeed(served):
    if not shutil.which("sfeed"):
        pytest.fail("sfeed is not installed (.ci/run installs it with apt-get)")
    bad = []
    for path in feed_paths(served):
        if not sfeed_rows(urllib.request.urlopen(served["url"] + path, timeout=30).read()):
            bad.append(path)
    record("sfeed", "parses every feed", not bad, ", ".join(bad))
    want = expected_fields(served, SAMPLE)
    for ext in ("rss", "atom"):
        rows = sfeed_rows(urllib.request.urlopen(f"{served['url']}/feeds/all.{ext}?limit=200", timeout=30).read())
        # fields: timestamp, title, link, content, content-type, id, author, enclosure, category
        row = next(r for r in rows if r[5] == entry_id(SAMPLE))
        content = row[3].replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
        got = {"title": row[1], "link": row[2], "date": datetime.fromtimestamp(int(row[0]), timezone.utc),
               "author": row[6], "image": row[7] or None, "categories": set(filter(None, row[8].split("|"))),
               "excerpt": text_of(content) if row[4] == "html" else content}
        check_fields("sfeed", got, want)
    assert all(v == "✓" for (c, _), v in RESULTS.items() if c == "sfeed"), {k: v for k, v in RESULTS.items() if k[0] == "sfeed"}


# -- readers that keep state: parse, fields, then a change picked up on refresh ---------------------

class Newsboat:
    def __init__(self, home: Path, urls: list[str]) -> None:
        self.home = home
        home.mkdir()
        (home / "config").write_text(f'error-log "{home}/err.log"\n')
        (home / "urls").write_text("".join(u + "\n" for u in urls))

    def reload(self) -> None:
        subprocess.run(["newsboat", "-u", str(self.home / "urls"), "-c", str(self.home / "cache.db"),
                        "-C", str(self.home / "config"), "-x", "reload"], check=True, timeout=180, capture_output=True,
                       env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"})

    def errors(self) -> str:
        log = self.home / "err.log"
        return log.read_text() if log.exists() else ""

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "cache.db")


class Reader:
    def __init__(self, path: Path, urls: list[str]) -> None:
        from reader import make_reader
        self.reader = make_reader(str(path))
        for url in urls:
            self.reader.add_feed(url, exist_ok=True)

    def update(self) -> None:
        self.reader.update_feeds(scheduled=False)  # a manual refresh, as a user's "update now"


class Rss2email:
    """r2e with a sendmail stand-in that stores each message as a file."""

    def __init__(self, home: Path, urls: list[str]) -> None:
        self.home, self.mail = home, home / "mail"
        self.mail.mkdir(parents=True)
        sendmail = home / "sendmail"
        sendmail.write_text(f'#!/bin/sh\ncat > "{self.mail}/$(date +%s%N).eml"\n')
        sendmail.chmod(0o755)
        (home / "r2e.cfg").write_text(f"[DEFAULT]\nto = reader@example.org\nemail-protocol = sendmail\n"
                                      f"sendmail = {sendmail}\ndate-header = True\n")
        self.base = ["r2e", "-c", str(home / "r2e.cfg"), "-d", str(home / "r2e.json")]
        for i, url in enumerate(urls):
            self.r2e("add", f"feed{i}", url)

    def r2e(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=180,
                              env={**os.environ, "HOME": str(self.home)})

    def messages(self) -> list[email.message.Message]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(self.mail.iterdir())]


def test_stateful_readers_see_fields_and_pick_up_changes(served, tmp_path):
    if not shutil.which("newsboat") or not shutil.which("r2e"):
        pytest.fail("newsboat or rss2email is not installed (.ci/run installs them with apt-get)")
    url = served["url"]
    all_paths = feed_paths(served)
    watched = [f"{url}/feeds/topics/ai.atom", f"{url}/feeds/all.rss?limit=200"]  # the changes land in both

    # newsboat: every feed parses (its own cache), then the watched ones keep state
    everything = Newsboat(tmp_path / "nb-all", [url + p for p in all_paths])
    everything.reload()
    titled = {u for u, t in everything.db().execute("select rssurl, title from rss_feed") if t}
    missing = [p for p in all_paths if url + p not in titled]
    record("newsboat", "parses every feed", not missing and "rror" not in everything.errors(),
           ", ".join(missing) + everything.errors()[:80])
    nb = Newsboat(tmp_path / "nb", watched)
    rd = Reader(tmp_path / "reader.sqlite", [url + p for p in all_paths] + watched)
    r2 = Rss2email(tmp_path / "r2e", watched)

    # first fetches (newsboat sends validators from its third reload on)
    nb.reload(), nb.reload()
    rd.update()
    first = r2.r2e("run")
    errors = {f.url: f.last_exception for f in rd.reader.get_feeds() if f.last_exception}
    record("reader", "parses every feed", not errors, str(errors))
    record("rss2email", "parses every feed", first.returncode == 0 and "error" not in first.stderr.lower(), first.stderr)
    want = expected_fields(served, SAMPLE)

    # fields of the sample entry, in each client's own storage
    db = nb.db()
    title, link, author, pub, content, enc = db.execute(
        "select title, url, author, pubDate, content, enclosure_url from rss_item where guid = ?", (entry_id(SAMPLE),)).fetchone()
    # newsboat keeps only audio/video enclosures (podcasts): it shows the image from the HTML body
    shown_image = want["image"] if f'src="{html.escape(want["image"])}"' in content else enc
    check_fields("newsboat", {"title": title, "link": link, "author": author, "image": shown_image,
                              "date": datetime.fromtimestamp(pub, timezone.utc), "excerpt": text_of(content)}, want)
    entry = next(e for e in rd.reader.get_entries() if e.id == entry_id(SAMPLE))
    check_fields("reader", {"title": entry.title, "link": entry.link, "author": entry.authors_str,
                            "date": entry.published, "image": next((x.href for x in entry.enclosures), None),
                            "excerpt": text_of(entry.summary or "")}, want)
    mail = next(m for m in r2.messages() if want["title"] in str(m["Subject"]))
    body = mail.get_body(("plain", "html")).get_content()
    check_fields("rss2email", {"title": str(mail["Subject"]), "link": want["link"] if want["link"] in body else None,
                               "author": want["author"] if want["author"] in str(mail["From"]) else str(mail["From"]),
                               "date": parsedate_to_datetime(mail["Date"]).astimezone(timezone.utc),
                               "image": want["image"] if want["image"] in body else None,
                               "excerpt": text_of(body) if "<" in body else body}, want)

    # an unchanged refresh: each client revalidates (a 304 proves it sent its validators)
    for name, refresh in (("newsboat", nb.reload), ("reader", rd.update), ("rss2email", lambda: r2.r2e("run"))):
        offset = log_offset(served)
        refresh()
        log = log_since(served, offset)
        record(name, "sent validators", '"GET /feeds/topics/ai.atom" 304' in log, log[-120:])

    # the curator adds a backdated article and retitles another
    inserted = curator(served, "POST", "/api/v1/articles", INSERT)["id"]
    fields = {k: v for k, v in served["rows"][EDITED].record.items() if k not in ("secured", "sourceSecured")}
    curator(served, "PUT", f"/api/v1/articles/{EDITED}", fields | {"title": NEW_TITLE})

    offset = log_offset(served)
    nb.reload()
    nb_log = log_since(served, offset)
    items = {g: (t, c) for g, t, c in nb.db().execute("select guid, title, content from rss_item")}
    nb_ok = (entry_id(inserted) in items and items[entry_id(inserted)][0] == INSERT["title"]
             and squash(INSERT["excerpt"]) in squash(text_of(items[entry_id(inserted)][1]))
             and items.get(entry_id(EDITED), ("",))[0] == NEW_TITLE)
    record("newsboat", "insert + edit on refresh", nb_ok and '"GET /feeds/topics/ai.atom" 200' in nb_log,
           str(items.get(entry_id(inserted))))

    rd.update()
    by_id = {e.id: e for e in rd.reader.get_entries()}
    rd_ok = (entry_id(inserted) in by_id and by_id[entry_id(inserted)].title == INSERT["title"]
             and squash(INSERT["excerpt"]) in squash(text_of(by_id[entry_id(inserted)].summary or ""))
             and by_id[entry_id(EDITED)].title == NEW_TITLE)
    record("reader", "insert + edit on refresh", rd_ok, str(by_id.get(entry_id(inserted))))

    before = len(r2.messages())
    r2.r2e("run")
    new = r2.messages()[before:]
    got = [str(m["Subject"]) for m in new]
    # rss2email mails each entry id once (trust-guid), so an edit is not mailed again: the insert must be
    record("rss2email", "insert + edit on refresh", INSERT["title"] in got, f"mailed {got}",
           passed="✓ insert (an edit is not mailed again: one mail per entry id)")

    # OPML: newsboat and rss2email import it with readable titles
    opml = tmp_path / "index.opml"
    opml.write_bytes(urllib.request.urlopen(f"{url}/feeds/index.opml", timeout=30).read())
    imported = Newsboat(tmp_path / "nb-opml", [])
    subprocess.run(["newsboat", "-u", str(imported.home / "urls"), "-c", str(imported.home / "cache.db"),
                    "-C", str(imported.home / "config"), "-i", str(opml)], check=True, timeout=60, capture_output=True,
                   env={"HOME": str(imported.home), "PATH": "/usr/bin:/bin"})
    imported.reload()
    titles = dict(imported.db().execute("select rssurl, title from rss_feed"))
    names = served["topic_names"]
    want_titles = {f"{url}/feeds/topics/{s}.atom": f"{names[s]} news" for s in served["topics"]}
    record("newsboat", "OPML titles", titles == want_titles, str(set(titles.items()) ^ set(want_titles.items()))[:80])

    mailer = Rss2email(tmp_path / "r2e-opml", [])
    mailer.r2e("opmlimport", str(opml))
    listed = mailer.r2e("list").stdout
    record("rss2email", "OPML titles", all(f"/feeds/topics/{s}.atom" in listed for s in served["topics"])
           and "AI" in listed, listed[:80])

    failed = {k: v for k, v in RESULTS.items() if k[0] in ("newsboat", "reader", "rss2email") and not v.startswith("✓")}
    assert not failed, failed


def test_newsboat_provider_opml_shows_every_article_once(served, tmp_path):
    """newsboat keeps one item per GUID across feeds, so overlapping topic feeds look partly
    empty; the provider OPML (disjoint feeds) is the documented way out."""
    url = served["url"]
    opml = tmp_path / "providers.opml"
    opml.write_bytes(urllib.request.urlopen(f"{url}/feeds/providers.opml", timeout=30).read())
    nb = Newsboat(tmp_path / "nb", [])
    subprocess.run(["newsboat", "-u", str(nb.home / "urls"), "-c", str(nb.home / "cache.db"), "-C",
                    str(nb.home / "config"), "-i", str(opml)], check=True, timeout=60, capture_output=True,
                   env={"HOME": str(nb.home), "PATH": "/usr/bin:/bin"})
    nb.reload()
    counts = dict(nb.db().execute("select feedurl, count(*) from rss_item group by feedurl"))
    feeds = [l.split()[0] for l in (nb.home / "urls").read_text().splitlines() if l.startswith("http")]
    assert feeds and all(counts.get(f, 0) > 0 for f in feeds), counts  # no provider feed is left empty
    home = urllib.request.urlopen(url + "/", timeout=30).read().decode()
    assert "/feeds/providers.opml" in home and "one copy per id" in home


def test_readers_given_the_site_address_find_the_feeds_in_link_headers(served):
    """`/` and HEAD `/` name the main feeds in HTTP Link headers (RFC 8288); requests parses
    them as link-following clients do, and the feed each one names parses."""
    import requests

    for method in ("GET", "HEAD"):
        resp = requests.request(method, served["url"] + "/", timeout=30)
        assert resp.status_code == 200
        found = {v["type"]: v["url"] for v in requests.utils.parse_header_links(resp.headers["Link"])
                 if v.get("rel") == "alternate"}
        assert set(found) == {"application/atom+xml", "application/rss+xml", "application/feed+json"}
    for kind in ("application/atom+xml", "application/rss+xml"):
        feed = feedparser.parse(requests.get(found[kind], timeout=30).content)
        assert not feed.bozo and feed.feed.title == "All articles" and feed.entries
    assert requests.get(found["application/feed+json"], timeout=30).json()["title"] == "All articles"
    icon = requests.get(served["url"] + "/favicon.ico", timeout=30)
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon" href="' + served["url"] + '/favicon.ico"' in requests.get(served["url"] + "/", timeout=30).text
