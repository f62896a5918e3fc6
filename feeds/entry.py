"""One typed view of a stored article, built once per row and read by every output: RSS,
Atom, JSON Feed and the API (as python-feedgen's one ``FeedEntry`` serialises to both)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .article import article_link, article_urls, entry_id, first_image
from .richtext import Enclosure, body_html, enclosure
from .store import ArticleRow

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_when(value: Any) -> datetime | None:
    """An ISO 8601 string from a stored record as an aware datetime (UTC when it has no offset)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def as_int(value: Any) -> int | None:
    """``value`` if it is an integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Author:
    name: str
    domain: str | None

    @property
    def uri(self) -> str | None:
        return f"https://{self.domain}/" if self.domain else None


@dataclass(frozen=True)
class Entry:
    """What every output says about one article; ``link`` is None for records without an
    http(s) link (feeds leave those out)."""

    article_id: str
    entry_id: str
    title: str
    link: str | None
    excerpt: str
    published: datetime
    updated: datetime
    categories: tuple[tuple[str, str], ...]   # (slug, display name)
    author: Author | None
    image: dict[str, Any] | None
    content: str                              # the record's Markdown body ("" when none)
    type: str
    quality: int | None
    heat: int | None
    row: ArticleRow

    @property
    def record(self) -> dict[str, Any]:
        return self.row.record

    @property
    def urls(self) -> dict[str, str]:
        """URL field -> url (the API's; feeds never need it, so it is not built per row)."""
        return article_urls(self.row.record)

    @functools.cached_property
    def enclosure(self) -> Enclosure | None:
        """The image as an enclosure (worked out once: the renderers ask several times)."""
        return enclosure(self.image)

    def body_html(self) -> str:
        """The HTML body readers show: image, excerpt, rendered Markdown body (``richtext``)."""
        return body_html(self.title, self.excerpt, self.image, self.content)

    @classmethod
    def of(cls, row: ArticleRow, topic_names: dict[str, str], provider_names: dict[str, str] | None = None) -> Entry:
        """Map one stored row; ``topic_names`` is slug -> display name; ``provider_names``
        (domain -> name) makes the author the provider's name as its feed is titled.

        ``updated`` is the record's ``updatedDateTime``, else when the store saw its entry last
        change (``ArticleRow.changed_ts``), never before ``published``."""
        r = row.record
        published = parse_when(r.get("publishedDateTime")) or datetime.fromtimestamp(row.published_ts, timezone.utc)
        changed = datetime.fromtimestamp(row.changed_ts, timezone.utc) if row.changed_ts is not None else None
        provider = r.get("provider") if isinstance(r.get("provider"), dict) else {}
        domain = str(provider.get("domain") or "") or None
        name = (provider_names or {}).get((domain or "").lower()) or provider.get("name")
        excerpt, content = r.get("excerpt"), r.get("content")
        return cls(
            article_id=row.id,
            entry_id=entry_id(row.id),
            title=str(r.get("title") or ""),
            link=article_link(r),
            excerpt=excerpt.strip() if isinstance(excerpt, str) else "",
            published=published,
            updated=max(parse_when(r.get("updatedDateTime")) or changed or published, published),
            categories=tuple((slug, topic_names.get(slug, slug)) for slug in row.topics),
            author=Author(str(name), domain) if name else None,
            image=first_image(r),
            content=content if isinstance(content, str) else "",
            type=str(r.get("type") or "article"),
            quality=as_int(r.get("quality")),
            heat=as_int(r.get("heat")),
            row=row,
        )
