"""Finding record files in content roots (the everyday-cc layout)."""
from __future__ import annotations

import os
from collections.abc import Iterator
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


# One record file found in a content root: (path, article id, precedence, size, mtime in ns,
# error). ``precedence`` orders the folders: among files with the same id the highest wins
# (later roots, and ``_news/`` over ``_archive/_news/``). A file that could not be stat'ed has
# size -1 and an error. Plain tuples: at 100k files a named tuple's constructor was a tenth of
# a re-sync.
RecordFile = tuple[str, str, int, int, int, str | None]


def list_records(roots: list[Path]) -> Iterator[RecordFile]:
    """Every record file of ``roots``, folder by folder, streamed (nothing of the tree is held:
    the importer writes them to the database in batches and resolves the ids there).

    Each folder is read with one ``os.scandir`` (file types come with the entries) and each
    record file costs one ``stat``; paths are ``<root>/<folder>/<id>.md`` strings. A folder
    that is missing or unreadable holds nothing to import."""
    precedence = 0
    for root in roots:
        for sub in RECORD_DIRS:
            precedence += 1
            try:
                entries = os.scandir(os.path.join(root, sub))
            except OSError:
                continue
            with entries:
                for entry in entries:
                    name = entry.name
                    if not is_record_name(name) or not entry.is_file():
                        continue
                    try:
                        st = entry.stat()
                    except OSError as exc:
                        yield entry.path, name[:-3], precedence, -1, 0, f"cannot read: {exc.strerror}"
                        continue
                    yield entry.path, name[:-3], precedence, st.st_size, st.st_mtime_ns, None


def find_record(roots: list[Path], article_id: str) -> Path | None:
    """The file that holds ``article_id`` under the same precedence as ``list_records``."""
    if not is_record_name(f"{article_id}.md"):
        return None
    for root in reversed(roots):
        for sub in reversed(RECORD_DIRS):
            path = root / sub / f"{article_id}.md"
            if path.is_file():
                return path
    return None
