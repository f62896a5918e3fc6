"""A small fixed content tree renders byte-identical feeds on every run.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py``
and review the diff.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from feeds.importer import sync
from server import create_app, get_store

HERE = Path(__file__).parent
CONTENT = HERE / "fixtures" / "golden-content"
GOLDEN = HERE / "golden"
DOCS = ["feeds/topics/robots.rss", "feeds/topics/robots.atom", "feeds/topics/robots.json",
        "feeds/all.atom", "feeds/providers/example.org.rss", "feeds/index.opml"]


def render_all(tmp_path: Path) -> dict[str, bytes]:
    app = create_app({"PUBLIC_BASE_URL": "https://feeds.example.org", "VERSION_TTL": 0}, tmp_path / "instance")
    sync(get_store(app), [CONTENT])
    client = app.test_client()
    out = {}
    for doc in DOCS:
        resp = client.get("/" + doc)
        assert resp.status_code == 200, doc
        out[doc] = resp.data
    return out


@pytest.mark.parametrize("doc", DOCS)
def test_golden(tmp_path, doc):
    first = render_all(tmp_path / "a")[doc]
    second = render_all(tmp_path / "b")[doc]
    assert first == second, "two renders of the same tree differ"
    golden = GOLDEN / doc.replace("/", "__")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(first)
    assert first == golden.read_bytes()


def test_golden_content_details(tmp_path):
    docs = render_all(tmp_path)
    atom = docs["feeds/topics/robots.atom"].decode()
    assert "An unpublished draft" not in atom
    assert "Robots learn to fold laundry &amp; &lt;sort&gt; socks" in atom
    assert "\x07" not in atom and "🤖" in atom
    assert "2024-03-01T09:30:00-07:00" in atom  # offsets kept
    assert "<updated>2024-03-02T08:00:00+00:00</updated>" in atom  # feed updated = newest entry
