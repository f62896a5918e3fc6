"""What an entry shows beyond plain fields: its image as an enclosure, and an HTML body (the
image, the excerpt and the record's Markdown body) for readers that show HTML.

Readers look for images in different places (RSS ``<enclosure>``, Atom ``link rel="enclosure"``,
``content:encoded`` / Atom ``content`` / JSON ``content_html``); ``media:thumbnail`` alone is
ignored by newsboat, sfeed, rss2email, ``reader``, rss-parser and feed-extractor.
"""
from __future__ import annotations

import html
import mimetypes
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import nh3
from markdown_it import MarkdownIt

# CommonMark without raw HTML (a record body is text, not markup to pass through); whatever the
# renderer emits is still sanitised by nh3 (ammonia's allow-list) before it reaches a reader.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                "webp": "image/webp", "avif": "image/avif", "svg": "image/svg+xml"}
_FORMAT_HINTS = ("format", "fm", "ext", "type")  # query keys image CDNs use for the served format


@dataclass(frozen=True)
class Enclosure:
    """An RSS 2.0 ``<enclosure>``: all three attributes are required; ``length`` is the size in
    bytes, ``0`` when unknown (the RSS Advisory Board's profile)."""

    url: str
    length: int
    type: str


def image_type(url: str) -> str | None:
    """The image MIME type a URL names by its path's extension or a format hint in its query
    (``?format=png``, ``?fm=webp``), else None."""
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key.lower() in _FORMAT_HINTS and value.lower() in _IMAGE_TYPES:
            return _IMAGE_TYPES[value.lower()]
    guessed, _ = mimetypes.guess_type(parts.path)
    if guessed and guessed.startswith("image/"):
        return guessed
    ext = parts.path.rsplit(".", 1)[-1].lower() if "." in parts.path.rsplit("/", 1)[-1] else ""
    return _IMAGE_TYPES.get(ext)


def enclosure(image: dict[str, Any] | None) -> Enclosure | None:
    """The record image as an enclosure, or None when there is none or its type cannot be told."""
    if not image:
        return None
    kind = image_type(image["url"])
    if kind is None:
        return None
    size = image.get("size") if isinstance(image.get("size"), int) and not isinstance(image.get("size"), bool) else 0
    return Enclosure(image["url"], max(size, 0), kind)


def markdown_html(text: str) -> str:
    """A Markdown body as sanitised HTML (CommonMark; links get ``rel="noopener noreferrer"``)."""
    return nh3.clean(_MARKDOWN.render(text)).strip()


def body_html(title: str, excerpt: str, image: dict[str, Any] | None, markdown: str | None) -> str:
    """The entry body: the image (with its width and height, ``alt`` = the title), the excerpt
    as an escaped paragraph, then the Markdown body. Empty when there is nothing to show."""
    parts = []
    if image:
        attrs = [f'src="{html.escape(image["url"])}"', f'alt="{html.escape(title)}"']
        for dim in ("width", "height"):
            value = image.get(dim)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                attrs.append(f'{dim}="{value}"')
        parts.append(f"<p><img {' '.join(attrs)}></p>")
    if excerpt:
        parts.append(f"<p>{html.escape(excerpt, quote=False)}</p>")
    if markdown and markdown.strip():
        parts.append(markdown_html(markdown))
    return "\n".join(parts)
