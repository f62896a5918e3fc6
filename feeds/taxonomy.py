"""Topics (``_data/topics/*.yaml``) and providers (``_data/organizations/*``).

Topic names in records resolve to taxonomy entries by name or slug (compared by
``name_key``); names with no entry still get a topic of their own, ``topic_slug(name)``.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import RecordError
from .records import decode, split_front_matter
from .text import clean_tree
from .yamlio import YamlProblem, load_yaml

_ORDER_PREFIX = re.compile(r"^\d+-")
_PLAIN_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ASCII_WORDS = re.compile(r"[a-z0-9]+")
_URL_SAFE_SLUG = re.compile(r"^[A-Za-z0-9._~-]+$")  # RFC 3986 unreserved: the same in a URL and a file name
# Symbols that tell programming languages apart (C, C#, C++, F#): spelled out, so the slug
# stays readable ("c-sharp", "c-plus-plus") instead of falling back to a hash suffix.
_SPELLED = {"#": " sharp ", "+": " plus "}


@lru_cache(maxsize=4096)  # pure, and an import asks for the same few hundred names 100,000s of times
def name_key(name: str) -> str:
    """What makes two topic names the same topic: case, accents (combining marks),
    compatibility forms and punctuation/space runs do not count. ``"Machine  Learning"``,
    ``"machine-learning"`` and ``"Machine Learning!"`` share the key ``machine-learning``;
    ``"C#"`` (``c-sharp``) and ``"C++"`` (``c-plus-plus``) do not; non-Latin letters are kept.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKC", folded.casefold())
    spelled = "".join(_SPELLED.get(c, c) for c in folded)
    words: list[str] = []
    current: list[str] = []
    for char in spelled:
        # Invisible format characters (zero-width space, soft hyphen) are dropped; spaces (Z*),
        # punctuation (P*) and controls separate words; letters, digits and other symbols
        # (€, emoji) are part of the name.
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        if category[0] in "ZPC":
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return "-".join(words)


def topic_slug(name: str) -> str:
    """The URL slug of a topic name without a taxonomy entry; never empty, and distinct names
    (by ``name_key``) get distinct slugs, whatever else is imported and in which order.

    A key made of ASCII letters and digits is the slug itself — the same slug the old
    ASCII-folding rule gave every such name, so existing feed URLs stay valid. Any other key
    (non-Latin letters, symbols, an empty key) keeps its ASCII words, if any, and gets
    ``--`` plus a hash of the key: the double hyphen never occurs in a plain slug, so a
    suffixed slug cannot collide with one.
    """
    key = name_key(name)
    if _PLAIN_SLUG.match(key):
        return key
    readable = "-".join(_ASCII_WORDS.findall(key)) or "topic"
    digest = hashlib.sha256((key or unicodedata.normalize("NFKC", name.casefold())).encode()).hexdigest()
    return f"{readable}--{digest[:10]}"


def resolve_topic(name: str, resolver: dict[str, str]) -> str:
    """The slug a record's topic name files under: its taxonomy entry (by name or slug, see
    ``Taxonomy.resolver``), else ``topic_slug(name)``."""
    return resolver.get(name_key(name)) or topic_slug(name)


@dataclass
class Topic:
    slug: str
    name: str
    position: int
    parent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Provider:
    domain: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Taxonomy:
    topics: dict[str, Topic] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)

    def resolver(self) -> dict[str, str]:
        """``name_key`` of each entry's slug and name -> slug (names win), for ``resolve_topic``."""
        table = {name_key(t.slug): t.slug for t in self.topics.values()}
        table.update({name_key(t.name): t.slug for t in self.topics.values()})
        return table


def _read_mapping(path: Path, front_matter: bool) -> dict[str, Any]:
    text = decode(path.read_bytes(), str(path))
    offset = 0
    if front_matter and text.startswith("---"):
        text, _ = split_front_matter(text, str(path))
        offset = 1
    try:
        data = load_yaml(text, first_document_only=True, first_line=1 + offset)
    except YamlProblem as exc:
        raise RecordError(str(path), exc.reason, exc.line) from None
    if not isinstance(data, dict):
        raise RecordError(str(path), f"expected a mapping of fields, got {type(data).__name__}", 1)
    return clean_tree(data)


def _key_line(path: Path, key: str) -> int | None:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeError):
        return None
    return next((n for n, line in enumerate(lines, 1) if re.match(rf"{key}\s*:", line)), None)


def _topic_problem(data: dict[str, Any]) -> tuple[str, str] | None:
    """(field, reason) for a topic entry the feeds and the API cannot use, else None."""
    for key in ("_id", "name", "parent"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            return key, f"expected text, got {type(value).__name__}"
    for key in ("keywords", "images"):
        value = data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                                     for v in value)):
            return key, "expected a list of text"
    if len(str(data.get("_id") or "")) > 255:
        return "_id", "a slug has at most 255 characters"
    return None


def _check_topics(files: dict[str, Path], tax: Taxonomy) -> None:
    """Report topic entries that make two names one topic, or one name two topics: the
    resolver would pick one silently (by file order), so the curator must choose."""
    by_key: dict[str, str] = {}
    for topic in tax.topics.values():
        for key in {name_key(topic.name), name_key(topic.slug)}:
            other = by_key.setdefault(key, topic.slug)
            if other != topic.slug:
                path = files[topic.slug]
                tax.errors.append(RecordError(str(path), f"field 'name': topic {topic.name!r} ({topic.slug}) has the "
                                              f"same name or slug as topic '{other}' in {files[other]}: rename one",
                                              _key_line(path, "name")))


def load_taxonomy(roots: list[Path]) -> Taxonomy:
    """Read every topic and organisation file under the content roots; later roots override.

    Two files of one root with the same slug, and entries whose names or slugs share a
    ``name_key``, are reported in ``errors`` (the first file read keeps the slug).
    """
    tax = Taxonomy()
    files: dict[str, Path] = {}
    position = 0
    for root in roots:
        in_root: dict[str, Path] = {}
        for path in sorted((root / "_data" / "topics").glob("*.y*ml")):
            try:
                data = _read_mapping(path, front_matter=False)
            except (RecordError, OSError) as exc:
                tax.errors.append(exc if isinstance(exc, RecordError) else RecordError(str(path), str(exc)))
                continue
            problem = _topic_problem(data)
            if problem:
                tax.errors.append(RecordError(str(path), f"field '{problem[0]}': {problem[1]}", _key_line(path, problem[0])))
                continue
            slug = str(data.get("_id") or _ORDER_PREFIX.sub("", path.stem))
            if not _URL_SAFE_SLUG.match(slug) or slug in (".", ".."):
                # The slug is a path segment of feed and static-API URLs and of `export` file
                # names: '%', spaces or non-ASCII would be percent-encoded (a static host looks
                # for the decoded name), and '..' is a dot segment that clients resolve away.
                tax.errors.append(RecordError(str(path), f"field '_id': {slug[:80]!r} is not a URL-safe slug (letters, "
                                              "digits, '-', '_', '.', '~'; not '.' or '..')", _key_line(path, "_id")))
                continue
            if slug in in_root:
                tax.errors.append(RecordError(str(path), f"field '_id': slug '{slug}' is also the slug of "
                                              f"{in_root[slug]}: rename one", _key_line(path, "_id")))
                continue
            in_root[slug] = files[slug] = path
            name = str(data.get("name") or slug)
            parent = data.get("parent")
            tax.topics[slug] = Topic(slug, name, position, str(parent) if parent else None, data)
            position += 1
        org_dir = root / "_data" / "organizations"
        # Jekyll reads organisation files with or without the .md extension.
        for path in sorted(org_dir.iterdir() if org_dir.is_dir() else []):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                data = _read_mapping(path, front_matter=True)
            except (RecordError, OSError) as exc:
                tax.errors.append(exc if isinstance(exc, RecordError) else RecordError(str(path), str(exc)))
                continue
            domain = str(data.get("domain") or data.get("_id") or path.name.removesuffix(".md")).lower()
            tax.providers[domain] = Provider(domain, str(data.get("name") or domain), data)
    _check_topics(files, tax)
    return tax
