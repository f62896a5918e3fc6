"""Article records: Markdown files with YAML front matter, validated into ``Article`` objects.

Three eras of the everyday-cc format are accepted (no quality/heat/related in the oldest);
every problem becomes a ``RecordError`` naming the file, the line and the field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from .errors import RecordError
from .text import clean_text, clean_tree, needs_cleaning
from .urls import is_http_url, normalize_url
from .yamlio import YamlProblem, load_yaml

MAX_RECORD_BYTES = 1024 * 1024  # the largest real record is ~41 kB
URL_FIELDS = ("originalUrl", "webUrl", "ampWebUrl", "cdnAmpWebUrl")
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.M)


@dataclass
class Article:
    """One validated record. ``record`` keeps every field, cleaned, in the source's naming."""

    id: str
    path: str
    title: str
    excerpt: str
    published_at: datetime
    updated_at: datetime | None
    link: str
    norm_url: str
    urls: list[str]
    type: str
    quality: int | None
    heat: int | None
    published: bool
    provider_name: str
    provider_domain: str
    topic_names: list[str]
    record: dict[str, Any] = field(repr=False)


def split_front_matter(text: str, path: str) -> tuple[str, str]:
    """Return (front matter, body). The front matter opens on line 1 with ``---``."""
    if not text.startswith("---"):
        raise RecordError(path, "no front matter: the file must start with a '---' line", 1)
    first_newline = text.find("\n")
    if first_newline < 0 or text[3:first_newline].strip():
        raise RecordError(path, "no front matter: the file must start with a '---' line", 1)
    end = _FRONT_MATTER_END.search(text, first_newline + 1)
    if not end:
        raise RecordError(path, "front matter is not terminated (no closing '---' line)", 1)
    return text[first_newline + 1 : end.start()], text[end.end() :].lstrip("\r\n")


def decode(data: bytes, path: str) -> str:
    """UTF-8 text of a content file, with size and encoding checked first."""
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(path, f"file is {len(data)} bytes, over the {MAX_RECORD_BYTES}-byte limit")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecordError(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", line) from None


def _line_of(front: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}\s*:", front, re.M)
    return front.count("\n", 0, match.start()) + 2 if match else None  # +1 for '---', +1 base


class _Fields:
    """Typed access to front-matter fields; each failure names the field and its line."""

    def __init__(self, data: dict[str, Any], front: str, path: str) -> None:
        self.data, self.front, self.path = data, front, path

    def fail(self, key: str, reason: str) -> RecordError:
        return RecordError(self.path, f"field '{key}': {reason}", _line_of(self.front, key))

    def text(self, key: str, *, required: bool = False) -> str:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(key, "is required")
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, f"expected text, got {type(value).__name__}")
        return clean_text(str(value)).strip()

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def when(self, key: str, *, required: bool = False) -> datetime | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(key, "is required")
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(key, f"not an ISO 8601 date-time: {value!r}") from None
        elif isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime):
            raise self.fail(key, f"expected a date-time, got {value!r}")
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def url(self, key: str) -> str:
        value = self.text(key)
        if value and not is_http_url(value):
            raise self.fail(key, f"only http(s) URLs are allowed, got {value[:80]!r}")
        return value

    def names(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise self.fail(key, "expected a list of names")
        return [clean_text(str(v)).strip() for v in value if str(v).strip()]

    def mappings(self, key: str) -> list[dict[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "expected a list of mappings")
        return value


def parse_article(data: bytes, path: str, article_id: str) -> Article:
    """Validate one record file's bytes. Pure: the same bytes give the same ``Article``."""
    text = decode(data, path)
    front, body = split_front_matter(text, path)
    try:
        raw = load_yaml(front)
    except YamlProblem as exc:
        raise RecordError(path, exc.reason, exc.line + 1 if exc.line else None) from None
    if not isinstance(raw, dict):
        raise RecordError(path, f"front matter must be a mapping of fields, got {type(raw).__name__}", 2)
    f = _Fields(raw, front, path)
    title = f.text("title", required=True)
    urls = {key: f.url(key) for key in URL_FIELDS}
    link = urls["webUrl"] or urls["originalUrl"]
    if not link:
        raise RecordError(path, "needs a 'webUrl' or an 'originalUrl' (neither is present)", 2)
    published_at = f.when("publishedDateTime", required=True)
    assert published_at is not None
    updated_at = f.when("updatedDateTime")
    provider = raw.get("provider") or {}
    if not isinstance(provider, dict):
        raise f.fail("provider", "expected a mapping with 'name' and 'domain'")
    domain = str(provider.get("domain") or "").strip().lower() or normalize_url(link).split("/")[0]
    images = f.mappings("images")
    related = f.mappings("related")
    dirty = needs_cleaning(front) or "\\" in front  # escapes such as \x01 yield control characters
    record = clean_tree({k: v for k, v in raw.items() if k != "secured"}, dirty)
    record.update(
        title=title,
        publishedDateTime=published_at.isoformat(),
        provider={**clean_tree(provider, dirty), "domain": domain, "name": clean_text(str(provider.get("name") or domain))},
        images=clean_tree(images, dirty),
        related=clean_tree(related, dirty),
        topics=f.names("topics"),
        tags=f.names("tags"),
    )
    if updated_at:
        record["updatedDateTime"] = updated_at.isoformat()
    if isinstance(raw.get("secured"), str):
        record["sourceSecured"] = raw["secured"]  # the source site's opaque value, never trusted
    if body.strip():
        record["content"] = clean_text(body)
    _stringify_dates(record)
    return Article(
        id=article_id,
        path=path,
        title=title,
        excerpt=f.text("excerpt"),
        published_at=published_at,
        updated_at=updated_at,
        link=link,
        norm_url=normalize_url(link),
        urls=[u for u in urls.values() if u],
        type=f.text("type") or "article",
        quality=f.integer("quality"),
        heat=f.integer("heat"),
        published=f.boolean("published", True),
        provider_name=record["provider"]["name"],
        provider_domain=domain,
        topic_names=record["topics"],
        record=record,
    )


def _stringify_dates(value: Any) -> None:
    """YAML timestamps elsewhere in the record (e.g. in ``related``) become ISO strings, UTC if naive."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if isinstance(item, datetime):
            value[key] = (item if item.tzinfo else item.replace(tzinfo=timezone.utc)).isoformat()
        elif isinstance(item, date):
            value[key] = item.isoformat()
        elif isinstance(item, float):
            value[key] = int(item) if item.is_integer() else str(item)  # signed objects hold no floats
        else:
            _stringify_dates(item)
