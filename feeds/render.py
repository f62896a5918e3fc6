"""Feed documents: RSS 2.0 and Atom 1.0 via feedgen, JSON Feed 1.1 and OPML 2.0 directly.

Rendering is pure: the same ``FeedSpec`` always gives byte-identical output (``updated`` comes
from the newest entry, never from the clock), which makes ETags stable and golden files possible.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

from feedgen.feed import FeedGenerator

from .store import ArticleRow
from .urlnorm import is_http_url

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://topicfeed.invalid/")
GENERATOR = "topicfeed"


def entry_id(article_id: str) -> str:
    """Stable entry id: derived from the article id only, never from title or content."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'article:' + article_id)}"


@dataclass
class FeedSpec:
    """Everything a feed document says, independent of its format."""

    key: str                      # e.g. "topics/ai": gives the feed its stable id
    title: str
    description: str
    self_url: str                 # without the extension; format renderers add theirs
    home_url: str
    entries: list[ArticleRow]
    topic_names: dict[str, str] = field(default_factory=dict)  # slug -> name, for categories
    image: str | None = None
    query: str = ""               # filter parameters, part of the self link of a filtered feed

    def self_link(self, ext: str) -> str:
        return f"{self.self_url}.{ext}" + (f"?{self.query}" if self.query else "")

    @property
    def feed_id(self) -> str:
        return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'feed:' + self.key)}"

    @property
    def updated(self) -> datetime:
        """The newest entry's date: never the clock, so renders are byte-identical — but never in
        the future either (a record dated ahead would otherwise pin readers' caches)."""
        newest = max((_entry_updated(e) for e in self.entries), default=EPOCH)
        return min(newest, datetime.now(timezone.utc).replace(microsecond=0))


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _entry_published(e: ArticleRow) -> datetime:
    return _when(e.record.get("publishedDateTime")) or datetime.fromtimestamp(e.published_ts, timezone.utc)


def _entry_updated(e: ArticleRow) -> datetime:
    return max(_when(e.record.get("updatedDateTime")) or EPOCH, _entry_published(e))


def article_link(record: dict[str, Any]) -> str | None:
    """webUrl, else originalUrl; only http(s)."""
    for key in ("webUrl", "originalUrl"):
        if is_http_url(record.get(key)):
            return record[key].strip()
    return None


def first_image(record: dict[str, Any]) -> dict[str, Any] | None:
    for image in record.get("images") or []:
        if isinstance(image, dict) and is_http_url(image.get("url")):
            return image
    return None


def _categories(e: ArticleRow, names: dict[str, str]) -> list[tuple[str, str]]:
    return [(slug, names.get(slug, slug)) for slug in e.topics]


def _generator(spec: FeedSpec, ext: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("media")
    fg.load_extension("dc")
    fg.id(spec.feed_id)
    fg.title(spec.title)
    fg.subtitle(spec.description or spec.title)
    fg.link(href=spec.self_link(ext), rel="self", type=CONTENT_TYPES[ext].split(";")[0])
    fg.link(href=spec.home_url, rel="alternate")  # RSS takes <link> from the last call
    fg.language("en")
    fg.generator(GENERATOR)
    fg.updated(spec.updated)
    fg.lastBuildDate(spec.updated)
    if spec.image and is_http_url(spec.image):
        fg.logo(spec.image)
        fg.image(url=spec.image, title=spec.title, link=spec.home_url)
    for e in spec.entries:
        link = article_link(e.record)
        if not link:
            continue
        provider = e.record.get("provider") or {}
        fe = fg.add_entry(order="append")
        fe.id(entry_id(e.id))
        fe.guid(entry_id(e.id), permalink=False)
        fe.title(e.record.get("title") or "(untitled)")
        fe.link(href=link, rel="alternate")
        excerpt = e.record.get("excerpt")
        if isinstance(excerpt, str) and excerpt.strip():
            fe.summary(excerpt.strip(), type="text")  # also RSS <description>
        fe.published(_entry_published(e))
        fe.updated(_entry_updated(e))
        for slug, name in _categories(e, spec.topic_names):
            fe.category(term=slug, label=name)
        if provider.get("name"):
            uri = f"https://{provider['domain']}/" if provider.get("domain") else None
            fe.author(name=provider["name"], uri=uri) if uri else fe.author(name=provider["name"])
            fe.dc.dc_creator(provider["name"])
        image = first_image(e.record)
        if image:
            thumb = {"url": image["url"]}
            for dim in ("width", "height"):
                if isinstance(image.get(dim), int):
                    thumb[dim] = str(image[dim])
            fe.media.thumbnail(thumb, group=None)
    return fg


def render_rss(spec: FeedSpec) -> bytes:
    return _generator(spec, "rss").rss_str(pretty=True)


def render_atom(spec: FeedSpec) -> bytes:
    return _generator(spec, "atom").atom_str(pretty=True)


def render_json(spec: FeedSpec) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    items = []
    for e in spec.entries:
        link = article_link(e.record)
        if not link:
            continue
        provider = e.record.get("provider") or {}
        item: dict[str, Any] = {
            "id": entry_id(e.id),
            "url": link,
            "title": e.record.get("title") or "(untitled)",
            "content_text": (e.record.get("excerpt") or "").strip() or e.record.get("title") or "",
            "date_published": _entry_published(e).isoformat(),
            "date_modified": _entry_updated(e).isoformat(),
            "tags": [name for _, name in _categories(e, spec.topic_names)],
        }
        if isinstance(e.record.get("excerpt"), str) and e.record["excerpt"].strip():
            item["summary"] = e.record["excerpt"].strip()
        if provider.get("name"):
            author = {"name": provider["name"]}
            if provider.get("domain"):
                author["url"] = f"https://{provider['domain']}/"
            item["authors"] = [author]
        image = first_image(e.record)
        if image:
            item["image"] = image["url"]
        items.append(item)
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": spec.title,
        "description": spec.description or spec.title,
        "home_page_url": spec.home_url,
        "feed_url": spec.self_link("json"),
        "language": "en",
        "items": items,
    }
    if spec.image and is_http_url(spec.image):
        doc["icon"] = spec.image
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"


RENDERERS = {"rss": render_rss, "atom": render_atom, "json": render_json}
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
