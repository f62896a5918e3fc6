"""Writing record files for curator edits: validated like imported files, written atomically."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .errors import RecordError
from .records import Article, parse_article
from .text import slugify
from .yamlio import YamlProblem, dump_yaml

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")


def check_id(article_id: str) -> str:
    """Ids are file names: letters, digits, '-' and '_' only, so no id escapes the folder."""
    if not _ID.match(article_id):
        raise RecordError("id", f"invalid article id {article_id[:80]!r}: use letters, digits, '-' and '_' only")
    return article_id


def new_id(fields: dict[str, Any]) -> str:
    """``YYYY-MM-DD-slug-of-the-title`` like the everyday-cc file names."""
    date = str(fields.get("publishedDateTime") or "")[:10]
    return check_id(f"{date}-{slugify(str(fields.get('title') or ''))[:80]}".strip("-") or "untitled")


def record_text(fields: dict[str, Any]) -> bytes:
    """The file a curator's JSON becomes: YAML front matter, no body."""
    fields = {k: v for k, v in fields.items() if k not in ("id", "secured", "sourceSecured")}
    return ("---\n" + dump_yaml(fields) + "---\n").encode()


def write_record(root: Path, article_id: str, fields: dict[str, Any]) -> Article:
    """Validate exactly as an import would, then write ``_news/<id>.md`` via temp file + rename."""
    folder = root / "_news"
    path = folder / f"{check_id(article_id)}.md"
    try:
        data = record_text(fields)
    except YamlProblem as exc:
        raise RecordError(str(path), exc.reason) from None
    article = parse_article(data, str(path), article_id)  # raises RecordError, nothing written
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return article


def delete_record(root: Path, article_id: str) -> bool:
    """Remove ``_news/<id>.md`` (and an archived copy) under ``root``; False if there was none."""
    removed = False
    for sub in ("_news", "_archive/_news"):
        path = root / sub / f"{check_id(article_id)}.md"
        if path.exists():
            path.unlink()
            removed = True
    return removed
