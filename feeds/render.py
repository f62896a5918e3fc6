"""Feed documents: RSS 2.0 and Atom 1.0 via feedgen, JSON Feed 1.1 and OPML 2.0 directly.

Rendering is pure: the same ``FeedSpec`` always gives byte-identical output (``updated`` comes
from the newest entry, never from the clock), which makes ETags stable and golden files possible.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

from feedgen.feed import FeedGenerator
from lxml import etree

from .article import feed_id
from .entry import EPOCH, Entry
from .urlnorm import is_http_url

GENERATOR = "topicfeed"
ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass
class FeedSpec:
    """Everything a feed document says, independent of its format."""

    identity: str                 # e.g. "topics/ai": gives the feed its stable id
    title: str
    description: str
    self_links: dict[str, str]    # format -> this feed's own URL in that format
    home_url: str
    entries: list[Entry]
    image: str | None = None
    hub_url: str | None = None    # WebSub hub to advertise (public feeds with a hub only)

    @property
    def feed_id(self) -> str:
        return feed_id(self.identity)

    @property
    def updated(self) -> datetime:
        """The newest entry's date: never the clock, so renders are byte-identical — but never in
        the future either (a record dated ahead would otherwise pin readers' caches)."""
        newest = max((e.updated for e in self.entries), default=EPOCH)
        return min(newest, datetime.now(timezone.utc).replace(microsecond=0))


def _generator(spec: FeedSpec, ext: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("media")
    fg.load_extension("dc")
    fg.id(spec.feed_id)
    fg.title(spec.title)
    fg.subtitle(spec.description or spec.title)
    fg.link(href=spec.self_links[ext], rel="self", type=CONTENT_TYPES[ext].split(";")[0])
    if spec.hub_url:
        fg.link(href=spec.hub_url, rel="hub")  # Atom only: feedgen drops it from RSS (see render_rss)
    fg.link(href=spec.home_url, rel="alternate")  # RSS takes <link> from the last call
    fg.language("en")
    fg.generator(GENERATOR)
    fg.updated(spec.updated)
    fg.lastBuildDate(spec.updated)
    if spec.image and is_http_url(spec.image):
        fg.logo(spec.image)
        fg.image(url=spec.image, title=spec.title, link=spec.home_url)
    for e in spec.entries:
        if not e.link:
            continue
        fe = fg.add_entry(order="append")
        fe.id(e.entry_id)
        fe.guid(e.entry_id, permalink=False)
        fe.title(e.title or "(untitled)")
        fe.link(href=e.link, rel="alternate")
        if e.excerpt:
            fe.summary(e.excerpt, type="text")  # also RSS <description>
        fe.published(e.published)
        fe.updated(e.updated)
        for slug, name in e.categories:
            fe.category(term=slug, label=name)
        if e.author:
            fe.author(name=e.author.name, uri=e.author.uri) if e.author.uri else fe.author(name=e.author.name)
            fe.dc.dc_creator(e.author.name)
        if e.image:
            thumb = {"url": e.image["url"]}
            for dim in ("width", "height"):
                if isinstance(e.image.get(dim), int):
                    thumb[dim] = str(e.image[dim])
            fe.media.thumbnail(thumb, group=None)
    return fg


def render_rss(spec: FeedSpec) -> bytes:
    xml = _generator(spec, "rss").rss_str(pretty=True)
    return _with_rss_hub(xml, spec.hub_url) if spec.hub_url else xml


def _with_rss_hub(xml: bytes, hub_url: str) -> bytes:
    """Add ``<atom:link rel="hub">`` after the channel's ``rel="self"`` link (WebSub §4 discovery),
    which feedgen's RSS writer leaves out."""
    root = etree.fromstring(xml)
    channel = root.find("channel")
    assert channel is not None
    self_link = channel.find(f"{{{ATOM_NS}}}link[@rel='self']")
    hub = etree.Element(f"{{{ATOM_NS}}}link", href=hub_url, rel="hub")
    if self_link is not None:
        self_link.addnext(hub)
    else:
        channel.append(hub)
    etree.indent(root, space="  ")
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def render_atom(spec: FeedSpec) -> bytes:
    return _generator(spec, "atom").atom_str(pretty=True)


def render_json(spec: FeedSpec) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    items = []
    for e in spec.entries:
        if not e.link:
            continue
        item: dict[str, Any] = {
            "id": e.entry_id,
            "url": e.link,
            "title": e.title or "(untitled)",
            "content_text": e.excerpt or e.title,
            "date_published": e.published.isoformat(),
            "date_modified": e.updated.isoformat(),
            "tags": [name for _, name in e.categories],
        }
        if e.excerpt:
            item["summary"] = e.excerpt
        if e.author:
            author = {"name": e.author.name}
            if e.author.uri:
                author["url"] = e.author.uri
            item["authors"] = [author]
        if e.image:
            item["image"] = e.image["url"]
        items.append(item)
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": spec.title,
        "description": spec.description or spec.title,
        "home_page_url": spec.home_url,
        "feed_url": spec.self_links["json"],
        "language": "en",
        "items": items,
    }
    if spec.image and is_http_url(spec.image):
        doc["icon"] = spec.image
    if spec.hub_url:
        doc["hubs"] = [{"type": "WebSub", "url": spec.hub_url}]
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"


RENDERERS = {"rss": render_rss, "atom": render_atom, "json": render_json}
FORMATS = tuple(RENDERERS)  # the feed formats, declared once
CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
}


@dataclass
class OutlineFeed:
    title: str
    xml_url: str
    html_url: str
    description: str = ""


def render_opml(title: str, feeds: list[OutlineFeed], created: datetime) -> bytes:
    """OPML 2.0 subscription list, ready to import into a reader."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = created.strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = ET.SubElement(opml, "body")
    for feed in feeds:
        ET.SubElement(body, "outline", type="rss", text=feed.title, title=feed.title,
                      xmlUrl=feed.xml_url, htmlUrl=feed.html_url, description=feed.description)
    ET.indent(opml)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(opml, encoding="utf-8") + b"\n"
