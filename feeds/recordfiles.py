"""Finding record files in content roots (the everyday-cc layout)."""
from __future__ import annotations

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


def scan_roots(roots: list[Path]) -> tuple[dict[str, Path], list[Override]]:
    """Map article id -> file. Later roots override earlier ones; within a root ``_news/``
    overrides ``_archive/_news/``. Files with an id that lost are returned as overrides."""
    chosen: dict[str, Path] = {}
    overrides: list[Override] = []
    for root in roots:
        for sub in RECORD_DIRS:
            folder = root / sub
            if not folder.is_dir():
                continue
            for entry in sorted(folder.glob("*.md")):
                if not is_record_name(entry.name) or not entry.is_file():
                    continue
                article_id = entry.stem
                if article_id in chosen:
                    overrides.append(Override(str(chosen[article_id]), str(entry)))
                chosen[article_id] = entry
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
