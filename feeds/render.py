"""Feed documents: RSS 2.0 and Atom 1.0 via feedgen, JSON Feed 1.1 and OPML 2.0 directly.

Rendering is pure: the same ``FeedSpec`` always gives byte-identical output (``updated`` comes
from the store's change time, never from the clock), which makes ETags stable and golden files
possible. feedgen writes every element; ``tests/test_feed_validity.py`` checks the bytes.
"""
from __future__ import annotations

import copy
import html
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

import orjson
from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree
from lxml.etree import SubElement

from .article import feed_id
from .entry import EPOCH, Entry
from .entrycache import EntryCache
from .richtext import Enclosure

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
    entries: list[Entry | Kept]   # newest first; ``Kept``: an entry an earlier render built
    icon: str                     # a square icon (the site's favicon when the feed has no image)
    logo: str                     # the topic's or provider's image, else the site's logo (PNG)
    category_scheme: str          # one URL naming the whole taxonomy (Atom scheme, RSS domain)
    changed_at: datetime | None = None   # when the feed's entries last changed (the store's record)
    created_at: datetime | None = None   # the store's creation time: an empty feed's date
    hub_url: str | None = None    # WebSub hub to advertise (public feeds with a hub only)
    entry_cache: EntryCache | None = None  # where the entries this render builds are kept

    @property
    def feed_id(self) -> str:
        return feed_id(self.identity)

    @property
    def last_modified(self) -> datetime:
        """When the feed's content last changed: the store's change time (it advances when an
        older-dated entry is added, one is edited or removed); without one, the newest entry's
        date; for an empty feed the store's creation time. Never the render clock, so renders
        are byte-identical. It may run a second or two ahead of the clock after a burst of
        writes (``feeds.store.changes``); ``updated`` and the HTTP header cap it at now."""
        return (self.changed_at or max((e.updated for e in self.entries if isinstance(e, Entry)), default=None)
                or self.created_at or EPOCH)

    @property
    def updated(self) -> datetime:
        """``last_modified``, never in the future (a record dated ahead would pin readers' caches)."""
        return min(self.last_modified, datetime.now(timezone.utc).replace(microsecond=0))


@dataclass(frozen=True)
class Kept:
    """An entry as an earlier render of ``format`` built it (``EntryCache``), shown unchanged:
    a ``FeedEntry`` for Atom and RSS, a JSON Feed item for JSON."""

    article_id: str
    fragment: Any


def entry_key(article_id: str, version: str, ext: str, category_scheme: str) -> tuple[str, str, str, str]:
    """The ``EntryCache`` key of one rendered entry: everything its bytes depend on (the entry
    version covers the record and the taxonomy names it shows; the scheme is the site's URL)."""
    return (article_id, version, ext, category_scheme)


def _keep(spec: FeedSpec, e: Entry, ext: str, fragment: Any, size: int) -> None:
    """Offer a freshly built entry to the spec's cache (tracked articles only)."""
    version = e.row.entry_version
    if spec.entry_cache is not None and version is not None:
        spec.entry_cache.put(entry_key(e.article_id, version, ext, spec.category_scheme), fragment, size)


_COPY_LOCK = threading.Lock()  # lxml trees are not to be read by two threads at once
_LENT = threading.local()      # ``items``: the kept elements this thread's render borrowed


class _KeptEntry(FeedEntry):
    """A ``FeedEntry`` that builds its Atom and RSS elements once. feedgen appends what
    ``atom_entry``/``rss_entry`` return to the document it is building, so an element serves
    one render at a time: it is lent (a spare one, else a copy of the one built), and
    ``_serialise`` gives it back once the document is written. At most ``SPARES`` are kept
    (as many renders at once reuse it without a copy; more copy)."""

    SPARES = 2

    def __init__(self) -> None:
        super().__init__()
        self._built: dict[str, Any] = {}
        self._spare: dict[str, list[Any]] = {"atom": [], "rss": []}

    def _element(self, kind: str, build: Any) -> Any:
        with _COPY_LOCK:
            spare = self._spare[kind]
            element = spare.pop() if spare else None
        if element is None:
            built = self._built.get(kind)
            if built is None:
                built = build(True)  # outside the lock: a race builds the same element twice
                self._built.setdefault(kind, built)
            with _COPY_LOCK:
                element = copy.deepcopy(built)
        lent = getattr(_LENT, "items", None)
        if lent is not None:
            lent.append((self, kind, element))
        return element

    def give_back(self, kind: str, element: Any) -> None:
        """Take back an element lent to a finished render (detached from its document)."""
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
        with _COPY_LOCK:
            if len(self._spare[kind]) < self.SPARES:
                self._spare[kind].append(element)

    def atom_entry(self, extensions: bool = True) -> Any:
        return self._element("atom", super().atom_entry)

    def rss_entry(self, extensions: bool = True) -> Any:
        return self._element("rss", super().rss_entry)


def _serialise(fg: FeedGenerator, kind: str) -> bytes:
    """``fg``'s document (pretty-printed, as always), then every kept element back to its entry."""
    _LENT.items = []
    try:
        return fg.atom_str(pretty=True) if kind == "atom" else fg.rss_str(pretty=True)
    finally:
        lent, _LENT.items = _LENT.items, None
        for entry, lent_kind, element in lent:
            entry.give_back(lent_kind, element)


class _AtomEnclosure(BaseEntryExtension):
    """Writes an Atom ``<link rel="enclosure" type=… length=…>`` itself: feedgen 1.0's
    ``FeedEntry.link`` loses ``rel``, ``type`` and ``length`` on entry links (it reads them from
    the element it just created), which would turn the image into a second alternate link."""

    def __init__(self) -> None:
        self.value: Enclosure | None = None

    def set(self, value: Enclosure | None) -> None:
        self.value = value

    def extend_atom(self, entry: Any) -> Any:
        if self.value:
            # feedgen's entry children are un-namespaced under the Atom default namespace: same here
            SubElement(entry, "link", rel="enclosure", href=self.value.url,
                       type=self.value.type, length=str(self.value.length))
        return entry


def _generator(spec: FeedSpec, ext: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("media")
    if ext == "atom":
        fg.register_extension("enclosure", BaseExtension, _AtomEnclosure, atom=True, rss=False)
    if ext == "rss":  # RSS <author> must be an e-mail address; Atom has <author><name> (no dc:creator twice)
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
    fg.icon(spec.icon)
    fg.logo(spec.logo)
    fg.image(url=spec.logo, title=spec.title, link=spec.home_url)
    for e in spec.entries:
        if isinstance(e, Kept):
            fg.add_entry(e.fragment, order="append")  # its extensions are already registered: kept
        elif e.link:
            fe = fg.add_entry(_KeptEntry() if spec.entry_cache is not None else None, order="append")
            _fill(fe, e, spec, ext)
            _keep(spec, e, ext, fe, _XML_ENTRY_FACTOR * (len(e.content) + len(e.excerpt) + len(e.title)) + _XML_ENTRY_BASE)
    return fg


# What a kept Atom/RSS entry holds (its FeedEntry, the element built and a spare): measured as
# process RSS growth over the 568 entries of the 29 topic feeds of the 100k corpus tree, 22 kB
# each on average, mostly per element (about 25 per entry) rather than per character
_XML_ENTRY_FACTOR, _XML_ENTRY_BASE = 20, 16384


def _fill(fe: FeedEntry, e: Entry, spec: FeedSpec, ext: str) -> None:
    """Set one entry's fields through feedgen's API."""
    fe.id(e.entry_id)
    fe.guid(e.entry_id, permalink=False)
    fe.title(e.title or "(untitled)")
    fe.link(href=e.link, rel="alternate")
    if e.excerpt:
        # HTML in RSS <description> and Atom type="html": the text escaped once more, so
        # every reader shows exactly what the curator wrote (&, <tag>-like text, &amp;).
        fe.summary(html.escape(e.excerpt, quote=False), type="html")
    body = e.body_html()
    if body:
        fe.content(body, type="html")  # also RSS content:encoded
    fe.published(e.published)
    fe.updated(e.updated)
    if e.categories:  # one call: feedgen checks every call's arguments (a third of its time)
        fe.category([{"term": name, "scheme": spec.category_scheme} for _, name in e.categories])
    if e.author:
        fe.author(name=e.author.name, uri=e.author.uri) if e.author.uri else fe.author(name=e.author.name)
        if ext == "rss":
            fe.dc.dc_creator(e.author.name)
    if ext == "atom":
        fe.enclosure.set(e.enclosure)
    elif e.enclosure:
        fe.enclosure(e.enclosure.url, str(e.enclosure.length), e.enclosure.type)
    if e.image:
        thumb = {"url": e.image["url"]}
        for dim in ("width", "height"):
            if isinstance(e.image.get(dim), int):
                thumb[dim] = str(e.image[dim])
        fe.media.thumbnail(thumb, group=None)


def render_rss(spec: FeedSpec) -> bytes:
    xml = _serialise(_generator(spec, "rss"), "rss")
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
    return _serialise(_generator(spec, "atom"), "atom")


def render_json(spec: FeedSpec) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1); items also carry the 1.0 ``author``
    so readers of either version show one.

    Serialised by orjson with two-space indents and sorted keys: the same bytes as
    ``json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True)`` (which earlier versions
    used; ``tests/test_feeds.py`` compares the two), without the standard library's pure-Python
    indenting encoder, which took most of a JSON render."""
    items = []
    for e in spec.entries:
        if isinstance(e, Kept):
            items.append(e.fragment)
        elif e.link:
            item = _json_item(e)
            items.append(item)
            # a dict of str holds about twice its UTF-8 text (object headers, key and value pointers)
            _keep(spec, e, "json", item, 2 * len(orjson.dumps(item)))
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": spec.title,
        "description": spec.description or spec.title,
        "home_page_url": spec.home_url,
        "feed_url": spec.self_links["json"],
        "language": "en",
        "icon": spec.logo,
        "favicon": spec.icon,
        "items": items,
    }
    if spec.hub_url:
        doc["hubs"] = [{"type": "WebSub", "url": spec.hub_url}]
    return orjson.dumps(doc, option=JSON_OPTIONS) + b"\n"


JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def _json_item(e: Entry) -> dict[str, Any]:
    """One JSON Feed item (kept items are shared: never changed once built)."""
    item: dict[str, Any] = {
        "id": e.entry_id,
        "url": e.link,
        "title": e.title or "(untitled)",
        "content_text": e.excerpt or e.title,
        "date_published": e.published.isoformat(),
        "date_modified": e.updated.isoformat(),
        "tags": [name for _, name in e.categories],
    }
    body = e.body_html()
    if body:
        item["content_html"] = body
    if e.excerpt:
        item["summary"] = e.excerpt
    if e.author:
        author = {"name": e.author.name}
        if e.author.uri:
            author["url"] = e.author.uri
        item["authors"] = [author]
        item["author"] = author
    if e.image:
        item["image"] = e.image["url"]
    enclosure = e.enclosure
    if enclosure:
        attachment: dict[str, Any] = {"url": enclosure.url, "mime_type": enclosure.type}
        if enclosure.length:
            attachment["size_in_bytes"] = enclosure.length
        item["attachments"] = [attachment]
    return item


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
