"""Entry images and HTML bodies (issue 10): enclosure types, the sanitised Markdown body, and a
record with a body served in every format."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from feeds.importer import sync
from feeds.richtext import body_html, enclosure, image_type, markdown_html
from server import create_app, get_store

HERE = Path(__file__).parent


@pytest.mark.parametrize("url,kind", [
    ("https://x.example/a/b.JPG", "image/jpeg"), ("https://x.example/p.png?w=1200&strip=all", "image/png"),
    ("https://x.example/img?id=3&format=webp", "image/webp"), ("https://x.example/i.php?fm=jpg", "image/jpeg"),
    ("https://x.example/photo", None), ("https://x.example/doc.pdf", None),
])
def test_image_type_from_extension_or_format_hint(url, kind):
    assert image_type(url) == kind


def test_enclosure_length_is_the_size_when_known_else_zero_and_absent_without_a_type():
    assert enclosure({"url": "https://x.example/a.gif"}).length == 0
    assert enclosure({"url": "https://x.example/a.gif", "size": 1234}).length == 1234
    assert enclosure({"url": "https://x.example/photo"}) is None and enclosure(None) is None


def test_markdown_body_is_rendered_and_sanitised():
    out = markdown_html("**bold** & [a link](https://x.example/) <script>alert(1)</script>\n\n"
                        "[bad](javascript:alert(1))")
    assert "<strong>bold</strong> &amp;" in out and 'href="https://x.example/"' in out
    assert "<script" not in out and "&lt;script&gt;" in out and "href=\"javascript" not in out


def test_body_html_has_image_with_size_and_alt_then_escaped_excerpt():
    out = body_html('A "title" & more', "5 < 6 & &amp;", {"url": "https://x.example/a.png?x=1&y=2", "width": 10,
                                                           "height": 5}, None)
    assert out == ('<p><img src="https://x.example/a.png?x=1&amp;y=2" alt="A &quot;title&quot; &amp; more" '
                   'width="10" height="5"></p>\n<p>5 &lt; 6 &amp; &amp;amp;</p>')


def test_a_record_body_reaches_every_format(tmp_path):
    content = tmp_path / "site"
    shutil.copytree(HERE / "fixtures" / "golden-content", content)
    (content / "_news" / "2024-03-03-with-body.md").write_text(
        "---\ntitle: With a body\npublishedDateTime: 2024-03-03T10:00:00Z\n"
        "webUrl: https://www.example.org/2024/03/with-body\nprovider:\n  name: Example\n  domain: example.org\n"
        "topics: [Robots]\n---\nSome **Markdown** with <script>x()</script> & a [link](https://example.org/).\n")
    app = create_app({"VERSION_TTL": 0}, tmp_path / "instance")
    report = sync(get_store(app), [content])
    assert not report.skipped, report.skipped
    client = app.test_client()
    item = next(i for i in json.loads(client.get("/feeds/all.json").data)["items"] if i["title"] == "With a body")
    assert "<strong>Markdown</strong>" in item["content_html"] and "<script" not in item["content_html"]
    rss = ET.fromstring(client.get("/feeds/all.rss").data)
    # no excerpt: feedgen puts the HTML body in <description> (content:encoded would repeat it)
    encoded = [i.findtext("{http://purl.org/rss/1.0/modules/content/}encoded") or i.findtext("description")
               for i in rss.iter("item") if i.findtext("title") == "With a body"][0]
    assert "<strong>Markdown</strong>" in encoded
    atom = ET.fromstring(client.get("/feeds/all.atom").data)
    ns = "{http://www.w3.org/2005/Atom}"
    entry = [e for e in atom.iter(f"{ns}entry") if e.findtext(f"{ns}title") == "With a body"][0]
    assert entry.find(f"{ns}content").get("type") == "html" and "<strong>" in entry.findtext(f"{ns}content")
