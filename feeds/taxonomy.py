"""Topics (``_data/topics/*.yaml``) and providers (``_data/organizations/*``).

Topic names in records resolve to taxonomy entries by name (case-insensitive) or slug;
names with no entry still get a topic of their own, slugified.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RecordError
from .records import decode, split_front_matter
from .text import clean_tree
from .yamlio import YamlProblem, load_yaml

_ORDER_PREFIX = re.compile(r"^\d+-")


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
        """name/slug (lower-case) -> slug, for resolving many records quickly."""
        table = {t.slug: t.slug for t in self.topics.values()}
        table.update({t.name.lower(): t.slug for t in self.topics.values()})
        return table


def _read_mapping(path: Path, front_matter: bool) -> dict[str, Any]:
    text = decode(path.read_bytes(), str(path))
    offset = 0
    if front_matter and text.startswith("---"):
        text, _ = split_front_matter(text, str(path))
        offset = 1
    try:
        data = load_yaml(text, first_document_only=True)
    except YamlProblem as exc:
        raise RecordError(str(path), exc.reason, exc.line + offset if exc.line else None) from None
    if not isinstance(data, dict):
        raise RecordError(str(path), f"expected a mapping of fields, got {type(data).__name__}", 1)
    return clean_tree(data)


def load_taxonomy(roots: list[Path]) -> Taxonomy:
    """Read every topic and organisation file under the content roots; later roots override."""
    tax = Taxonomy()
    position = 0
    for root in roots:
        for path in sorted((root / "_data" / "topics").glob("*.y*ml")):
            try:
                data = _read_mapping(path, front_matter=False)
            except (RecordError, OSError) as exc:
                tax.errors.append(exc if isinstance(exc, RecordError) else RecordError(str(path), str(exc)))
                continue
            slug = str(data.get("_id") or _ORDER_PREFIX.sub("", path.stem))
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
    return tax
