"""Facts about one article, each computed in one place from its stored record (the cleaned
front matter): which URLs it has, which one is *the* link, its lookup hashes, its curated
related items, its first image and its entry id. Import, feeds and the API all ask here."""
from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .urlnorm import is_http_url as _is_http_url, normalize_url, url_hash

# Every field an article is reachable by (DESIGN.md, "URL normalisation"); the AMP-cache form
# maps back to the publisher URL it wraps.
@functools.lru_cache(maxsize=8192)
def _http_url(value: str) -> bool:
    return _is_http_url(value)


def is_http_url(value: object) -> bool:
    """``urlnorm.is_http_url``, remembered for the last few thousand strings: a feed render
    checks every entry's link and image (a WHATWG parse each, a third of a cold render), and
    the same entries recur in the feed's three formats, its topic, provider and ``all`` feeds."""
    return isinstance(value, str) and _http_url(value)


URL_FIELDS = ("originalUrl", "webUrl", "ampWebUrl", "cdnAmpWebUrl")
# The link readers open: the publisher's page, else the original (DESIGN.md, "Feeds").
LINK_FIELDS = ("webUrl", "originalUrl")
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://topicfeed.invalid/")
_NOT_ALNUM = re.compile(r"[\W_]+")


def title_key(title: str) -> str:
    """The form two headlines share when they are the same story: NFKC, lower case, each run of
    characters other than letters and digits as one space ("Meta goes open-source!" ->
    "meta goes open source"). The extension's ``viewmodel.js`` ``titleKey`` applies the same rule."""
    return _NOT_ALNUM.sub(" ", unicodedata.normalize("NFKC", title).lower()).strip()


def entry_id(article_id: str) -> str:
    """The feed entry id ``urn:uuid:…`` (RFC 4122 version 5): from the article id only, never
    from title or content, so it survives edits and re-imports (a fixed contract, DESIGN.md)."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'article:' + article_id)}"


def feed_id(identity: str) -> str:
    """A feed's ``urn:uuid:`` id from its identity (``all``, ``topics/<slug>`` …)."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'feed:' + identity)}"


def article_urls(record: dict[str, Any]) -> dict[str, str]:
    """``{field: url}`` of the record's http(s) URL fields, in ``URL_FIELDS`` order."""
    return {k: record[k].strip() for k in URL_FIELDS if is_http_url(record.get(k))}


def article_link(record: dict[str, Any]) -> str | None:
    """The article's link (``webUrl``, else ``originalUrl``; http(s) only), or None."""
    return next((record[k].strip() for k in LINK_FIELDS if is_http_url(record.get(k))), None)


def lookup_hashes(record: dict[str, Any]) -> dict[str, str]:
    """``{lookup hash: url}`` for every URL the article is reachable by, first field first.
    The hash is the hex SHA-256 of the normalised URL (DESIGN.md); unparseable URLs are left out.

    Works on the record as stored (``articles.record``), so an upgrade can recompute the lookup
    table without reading the content files."""
    out: dict[str, str] = {}
    for url in article_urls(record).values():
        try:
            out.setdefault(url_hash(normalize_url(url)), url)
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class CuratedItem:
    """One usable entry of the record's own ``related`` list."""

    link: str
    norm_url: str
    title: str
    item: dict[str, Any]


def curated_items(record: dict[str, Any]) -> Iterator[CuratedItem]:
    """The record's ``related`` items that have a title and an http(s) link, without items that
    point back at the article itself (by URL or headline) and without repeated URLs or headlines
    (compared by ``title_key``)."""
    own_urls = set()
    for url in article_urls(record).values():
        try:
            own_urls.add(normalize_url(url))
        except ValueError:
            continue
    seen_titles = {title_key(str(record.get("title") or ""))}
    for item in record.get("related") or []:
        if not isinstance(item, dict):
            continue
        link = article_link(item)
        title = str(item.get("title") or "").strip()
        if not link or not title or title_key(title) in seen_titles:
            continue
        try:
            norm = normalize_url(link)
        except ValueError:
            continue
        if norm in own_urls:
            continue
        own_urls.add(norm)
        seen_titles.add(title_key(title))
        yield CuratedItem(link, norm, title, item)


def first_image(record: dict[str, Any]) -> dict[str, Any] | None:
    """The first image with an http(s) ``url``, as the record gives it."""
    for image in record.get("images") or []:
        if isinstance(image, dict) and is_http_url(image.get("url")):
            return image
    return None
