"""A real RSS reader (newsboat) subscribes to feeds of a running server over real HTTP."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from feeds.article import entry_id


@pytest.mark.reader
def test_newsboat_stores_expected_items(live_corpus_server, tmp_path, corpus_app):
    if not shutil.which("newsboat"):
        pytest.fail("newsboat is not installed (.ci/run installs it with apt-get)")
    from server import get_store
    from feeds.query import FeedQuery
    store = get_store(corpus_app)
    home = tmp_path / "home"
    home.mkdir()
    (home / "config").write_text(f'error-log "{home}/err.log"\n')
    feeds = ["/feeds/topics/ai.atom", "/feeds/topics/machine-learning.rss", "/feeds/all.rss",  # newsboat reads RSS and Atom, not JSON Feed
             "/feeds/providers/infoworld.com.atom"]
    (home / "urls").write_text("".join(f"{live_corpus_server.url}{f}\n" for f in feeds))
    cmd = ["newsboat", "-u", str(home / "urls"), "-c", str(home / "cache.db"), "-C", str(home / "config")]
    for _ in range(3):  # from the third reload on, newsboat sends its stored validators
        subprocess.run(cmd + ["-x", "reload"], check=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                       timeout=120, capture_output=True)
    err = (home / "err.log").read_text() if (home / "err.log").exists() else ""
    assert "Error" not in err, err
    db = sqlite3.connect(home / "cache.db")
    stored = {guid: (feedurl.replace(live_corpus_server.url, ""), title, url)
              for feedurl, title, url, guid in db.execute("select feedurl, title, url, guid from rss_item")}
    expected = {}  # newsboat keeps an item once even when several feeds carry it
    for scope, key in (("topic", "ai"), ("topic", "machine-learning"), ("all", None), ("provider", "infoworld.com")):
        rows = store.recent(scope, key, FeedQuery())
        assert rows
        expected.update({entry_id(a.id): a for a in rows})
    assert set(stored) == set(expected)
    for guid, (feed, title, url) in stored.items():
        record = expected[guid].record
        assert title == record["title"]
        assert url == (record.get("webUrl") or record["originalUrl"])
        assert feed in feeds
    log = live_corpus_server.access_log()
    assert '"GET /feeds/topics/ai.atom" 304' in log  # conditional requests from the reader
