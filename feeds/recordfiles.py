"""Finding record files in content roots (the everyday-cc layout)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RECORD_DIRS = ("_archive/_news", "_news")  # later wins: _news/ shadows _archive/_news/


def is_record_name(name: str) -> bool:
    """A record file is ``<id>.md`` with an id not starting with '.': temporary files of
    ``feeds.atomic`` (``.<name>.<random>.tmp``), editor swap files and other hidden files
    are never records, whatever they end in."""
    return name.endswith(".md") and not name.startswith(".") and len(name) > 3


@dataclass(frozen=True)
class Override:
    """A record file not used because another file has the same id."""

    path: str
    winner: str

    def __str__(self) -> str:
        return f"{self.path}: same id as {self.winner}, which is used instead"


def scan_roots(roots: list[Path]) -> tuple[dict[str, str], list[Override]]:
    """Map article id -> file path. Later roots override earlier ones; within a root ``_news/``
    overrides ``_archive/_news/``. Files with an id that lost are returned as overrides.

    Paths are strings and each folder is read with one ``os.scandir`` (file types come with
    the entries): at 100k files, ``Path`` objects and their sorting were most of a re-sync."""
    chosen: dict[str, str] = {}
    overrides: list[Override] = []
    for root in roots:
        for sub in RECORD_DIRS:
            folder = os.path.join(root, sub)
            try:
                with os.scandir(folder) as it:
                    names = sorted(e.name for e in it if is_record_name(e.name) and e.is_file())
            except OSError:  # no such folder (or not a readable one): nothing to import from it
                continue
            for name in names:
                article_id, path = name[:-3], os.path.join(folder, name)
                if article_id in chosen:
                    overrides.append(Override(chosen[article_id], path))
                chosen[article_id] = path
    return chosen, overrides


def find_record(roots: list[Path], article_id: str) -> Path | None:
    """The file that holds ``article_id`` under the same precedence as ``scan_roots``."""
    if not is_record_name(f"{article_id}.md"):
        return None
    for root in reversed(roots):
        for sub in reversed(RECORD_DIRS):
            path = root / sub / f"{article_id}.md"
            if path.is_file():
                return path
    return None
