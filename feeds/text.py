"""Small text helpers shared by parsing, indexing and rendering."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

# Code points XML 1.0 cannot carry (lxml and feed readers reject them).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z0-9]+")

STOPWORDS = frozenset(
    """a about after all also an and any are as at be been but by can could did do does for from
    has have how if in into is it its it's more most new no not now of on one or our out over says
    so than that the their them then there these they this to up us was we what when which who
    why will with would you your""".split()
)


def clean_text(value: str) -> str:
    """Drop characters XML cannot carry; everything else is kept as written."""
    return _XML_ILLEGAL.sub("", value)


def clean_tree(value: Any, has_illegal: bool | None = None) -> Any:
    """``clean_text`` applied to every string inside nested lists and mappings."""
    if has_illegal is not None and not has_illegal:
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_tree(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_tree(v) for k, v in value.items()}
    return value


def needs_cleaning(text: str) -> bool:
    """Whether ``text`` holds any character ``clean_text`` would drop (a fast pre-check)."""
    return _XML_ILLEGAL.search(text) is not None


def slugify(name: str) -> str:
    """ASCII slug for topic names that have no taxonomy entry ("Facebook AI" -> "facebook-ai")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _SLUG_DROP.sub("-", ascii_name.lower()).strip("-")


def tokens(text: str) -> list[str]:
    """Lower-case content words (no stop words, at least three characters) for similarity."""
    return [w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS]
