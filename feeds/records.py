"""Article records: Markdown files with YAML front matter, validated into ``Article`` objects.

Three eras of the everyday-cc format are accepted (no quality/heat/related in the oldest);
every problem becomes a ``RecordError`` naming the file, the line and the field. Every value is
checked here, at the edge, so that whatever is accepted can be stored on both backends and
served as JSON: integers in range, URLs the WHATWG parser accepts, dates that exist, only
JSON-compatible values (the YAML loader guarantees text keys and no sets, binaries or dates).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

from .errors import RecordError
from .text import clean_text, clean_tree, needs_cleaning
from .article import URL_FIELDS
from .urlnorm import is_http_url, normalize_url
from .yamlio import YamlProblem, load_yaml

MAX_RECORD_BYTES = 1024 * 1024  # the largest real record is ~41 kB
# ``quality`` and ``heat`` are INTEGER columns: 32-bit on PostgreSQL (SQLite would take 64).
# Accepting only what both backends hold means a record never imports on one and fails on the other.
STORE_INT_RANGE = (-(2**31), 2**31 - 1)
# Other integers are served in signed JSON; the extension verifies it with JavaScript numbers,
# which are exact only within +-(2**53 - 1) (Number.MAX_SAFE_INTEGER).
JSON_INT_RANGE = (-(2**53 - 1), 2**53 - 1)
MAX_TYPE_LENGTH = 64  # articles.type is VARCHAR(64)
MAX_DOMAIN_LENGTH = 253  # a DNS name (RFC 1035); providers.domain is VARCHAR(255)
MAX_NAME_LENGTH = 200  # topic and tag names; the slug (plus a 12-character suffix) fits VARCHAR(255)
# YAML 1.1's timestamp forms (what unquoted dates meant before the loader moved to YAML 1.2);
# ISO 8601 strings go through datetime.fromisoformat first.
_YAML11_TIMESTAMP = yaml.constructor.SafeConstructor.timestamp_regexp
_NOT_IN_HOST = re.compile(r"[\s/\\?#@%]")  # what would make a provider domain a path, query or URL
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
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,20}\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_shown(value)}")
        low, high = STORE_INT_RANGE
        if not low <= value <= high:
            raise self.fail(key, f"{_shown(value)} is out of range (an integer from {low} to {high})")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_shown(value)}")
        return value

    def when(self, key: str, *, required: bool = False) -> datetime | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(key, "is required")
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a date-time, got {_shown(value)}")
        parsed = parse_when(value)
        if parsed is None:
            raise self.fail(key, f"not an ISO 8601 date-time: {_shown(value)}")
        return parsed

    def url(self, key: str) -> str:
        value = self.text(key)
        if value:
            try:
                normalize_url(value)
            except ValueError:
                problem = "not a valid URL (host or port)" if value.lower().startswith(("http:", "https:")) \
                    else "only http(s) URLs are allowed"
                raise self.fail(key, f"{problem}, got {value[:80]!r}") from None
        return value

    def names(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            raise self.fail(key, "expected a list of names")
        names = [clean_text(str(v)).strip() for v in value if str(v).strip()]
        long = next((n for n in names if len(n) > MAX_NAME_LENGTH), None)
        if long:
            raise self.fail(key, f"name {long[:40]!r}… is longer than {MAX_NAME_LENGTH} characters")
        return names

    def mappings(self, key: str) -> list[dict[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "expected a list of mappings")
        return value


def _shown(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        # repr() refuses integers past 4300 digits (CPython's int/str limit), and such a number
        # is not worth quoting in full anyway.
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_when(value: str) -> datetime | None:
    """An aware datetime from ISO 8601 text or a YAML 1.1 timestamp form (``2001-12-14
    21:59:43.10 -5``); naive values are UTC. ``None`` for text that is not a real date."""
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        if not _YAML11_TIMESTAMP.match(value):
            return None
        try:
            node = yaml.ScalarNode("tag:yaml.org,2002:timestamp", value)
            parsed = yaml.constructor.SafeConstructor().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return None
        if not isinstance(parsed, datetime):
            parsed = datetime(parsed.year, parsed.month, parsed.day)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    try:
        parsed.astimezone(timezone.utc)  # feeds render UTC: 9999-12-31T23:59-14:00 is year 10000 there
    except OverflowError:
        return None
    return parsed


def _check_json(f: _Fields) -> None:
    """Every value must survive signed JSON on both sides: no float NaN/inf sneaks through as
    a number (floats become text, see ``_no_floats``) and integers stay JavaScript-exact."""
    low, high = JSON_INT_RANGE
    for key, value in f.data.items():
        if key in ("quality", "heat"):
            continue  # checked against the narrower store range by _Fields.integer
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, int) and not isinstance(item, bool) and not low <= item <= high:
                raise f.fail(key, f"integer {_shown(item)} is out of range ({low} to {high})")


def parse_article(data: bytes, path: str, article_id: str) -> Article:
    """Validate one record file's bytes. Pure: the same bytes give the same ``Article``."""
    text = decode(data, path)
    front, body = split_front_matter(text, path)
    try:
        raw = load_yaml(front, first_line=2)
    except YamlProblem as exc:
        raise RecordError(path, exc.reason, exc.line) from None
    if not isinstance(raw, dict):
        raise RecordError(path, f"front matter must be a mapping of fields, got {type(raw).__name__}", 2)
    f = _Fields(raw, front, path)
    _check_json(f)
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
    for part in ("name", "domain"):
        if provider.get(part) is not None and (isinstance(provider[part], bool) or not isinstance(provider[part], (str, int))):
            raise f.fail("provider", f"'{part}' must be text, got {_shown(provider[part])}")
    domain = str(provider.get("domain") or "").strip().lower() or normalize_url(link).split("/")[0]
    if len(domain) > MAX_DOMAIN_LENGTH:
        raise f.fail("provider", f"domain is longer than {MAX_DOMAIN_LENGTH} characters")
    if _NOT_IN_HOST.search(domain) or not is_http_url(f"http://{domain}/"):
        # The domain is a feed's path segment (/feeds/providers/<domain>.atom) and an export file name.
        raise f.fail("provider", f"domain {domain[:80]!r} is not a host name (like example.com)")
    kind = f.text("type") or "article"
    if len(kind) > MAX_TYPE_LENGTH:
        raise f.fail("type", f"is longer than {MAX_TYPE_LENGTH} characters")
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
    _no_floats(record)
    _iso_related_dates(record["related"])
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
        type=kind,
        quality=f.integer("quality"),
        heat=f.integer("heat"),
        published=f.boolean("published", True),
        provider_name=record["provider"]["name"],
        provider_domain=domain,
        topic_names=record["topics"],
        record=record,
    )


def _no_floats(value: Any) -> None:
    """Floats anywhere in the record become integers or text: signed objects hold no floats."""
    # one walk with a stack, not a call per value: it visits every value of every record
    stack = [value] if isinstance(value, (dict, list)) else []
    while stack:
        container = stack.pop()
        for key, item in container.items() if isinstance(container, dict) else enumerate(container):
            if isinstance(item, float):
                # 1e308 is "whole" too: only integers the JavaScript verifier holds exactly become ints.
                whole = item.is_integer() and JSON_INT_RANGE[0] <= item <= JSON_INT_RANGE[1]
                container[key] = int(item) if whole else str(item)  # same key: no resize while iterating
            elif isinstance(item, (dict, list)):
                stack.append(item)


def _iso_related_dates(related: list[dict[str, Any]]) -> None:
    """Curated related items' dates in the ISO form the API serves (as when YAML 1.1 made them
    timestamps); text that is not a date stays as written."""
    for item in related:
        for key in ("publishedDateTime", "updatedDateTime"):
            when = parse_when(item[key]) if isinstance(item.get(key), str) else None
            if when is not None:
                item[key] = when.isoformat()
