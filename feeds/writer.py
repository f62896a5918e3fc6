"""Writing record files for curator edits: validated like imported files, written atomically,
and undone (``FileChange.undo``) when the index could not follow."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .errors import RecordError
from .records import parse_article
from .text import slugify
from .yamlio import YamlProblem, dump_yaml

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")  # fullmatch: '$' would let a trailing newline in


def check_id(article_id: str) -> str:
    """Ids are file names: letters, digits, '-' and '_' only, so no id escapes the folder."""
    if not _ID.fullmatch(article_id):
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


class FileChange:
    """The previous bytes of every file a write touches, so the write can be undone when the
    index transaction that goes with it fails (file and index change together or not at all)."""

    def __init__(self) -> None:
        self._before: dict[Path, bytes | None] = {}

    def remember(self, path: Path) -> None:
        if path not in self._before:
            self._before[path] = path.read_bytes() if path.exists() else None

    def undo(self) -> None:
        """Put every touched file back as it was (atomically, one by one)."""
        for path, data in self._before.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(exist_ok=True)  # _news/ only: a missing root is an unmounted disk, never created
                write_atomic(path, data)


def record_path(root: Path, article_id: str) -> Path:
    """Where a curator write puts ``article_id``: ``<root>/_news/<id>.md``."""
    return root / "_news" / f"{check_id(article_id)}.md"


def write_record(root: Path, article_id: str, fields: dict[str, Any], change: FileChange | None = None) -> bytes:
    """Validate exactly as an import would, then write ``_news/<id>.md`` via temp file + rename;
    returns the bytes written. ``change`` remembers the previous file for ``undo``."""
    path = record_path(root, article_id)
    try:
        data = record_text(fields)
    except YamlProblem as exc:
        raise RecordError(str(path), exc.reason) from None
    parse_article(data, str(path), article_id)  # raises RecordError, nothing written
    path.parent.mkdir(exist_ok=True)  # _news/ only: a missing root is an unmounted disk, never created
    if change is not None:
        change.remember(path)
    write_atomic(path, data)
    return data


def delete_record(root: Path, article_id: str, change: FileChange | None = None) -> bool:
    """Remove ``_news/<id>.md`` (and an archived copy) under ``root``; False if there was none."""
    removed = False
    for sub in ("_news", "_archive/_news"):
        path = root / sub / f"{check_id(article_id)}.md"
        if path.exists():
            if change is not None:
                change.remember(path)
            path.unlink()
            removed = True
    return removed
