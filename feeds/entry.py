"""One typed view of a stored article, built once per row and read by every output: RSS,
Atom, JSON Feed and the API (as python-feedgen's one ``FeedEntry`` serialises to both)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .article import article_link, article_urls, entry_id, first_image
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
    type: str
    quality: int | None
    heat: int | None
    urls: dict[str, str]                      # URL field -> url
    row: ArticleRow

    @property
    def record(self) -> dict[str, Any]:
        return self.row.record

    @classmethod
    def of(cls, row: ArticleRow, topic_names: dict[str, str]) -> Entry:
        """Map one stored row; ``topic_names`` is slug -> display name."""
        r = row.record
        published = parse_when(r.get("publishedDateTime")) or datetime.fromtimestamp(row.published_ts, timezone.utc)
        provider = r.get("provider") if isinstance(r.get("provider"), dict) else {}
        excerpt = r.get("excerpt")
        return cls(
            article_id=row.id,
            entry_id=entry_id(row.id),
            title=str(r.get("title") or ""),
            link=article_link(r),
            excerpt=excerpt.strip() if isinstance(excerpt, str) else "",
            published=published,
            updated=max(parse_when(r.get("updatedDateTime")) or EPOCH, published),
            categories=tuple((slug, topic_names.get(slug, slug)) for slug in row.topics),
            author=Author(str(provider["name"]), str(provider.get("domain") or "") or None) if provider.get("name") else None,
            image=first_image(r),
            type=str(r.get("type") or "article"),
            quality=as_int(r.get("quality")),
            heat=as_int(r.get("heat")),
            urls=article_urls(r),
            row=row,
        )
