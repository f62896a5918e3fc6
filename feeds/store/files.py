"""File states: which content file each article came from, and the files that failed to parse.

The importer diffs the content tree against these to parse only what changed.
"""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete, insert, select, update

from .access import Access, WriteAccess
from .schema import articles, bad_files


class FileState(NamedTuple):
    """What the index knows of one content file; ``sha`` and ``article_id`` are None for a bad file."""

    size: int
    mtime_ns: int
    sha: str | None
    article_id: str | None


class BadFile(NamedTuple):
    """A content file that failed to parse, with where and why."""

    path: str
    line: int | None
    reason: str


class FileReads(Access):
    """What the importer diffs the tree against."""

    def file_states(self) -> dict[str, FileState]:
        """path -> state of every indexed or rejected file (an indexed one wins a shared path)."""
        with self._conn() as conn:
            # one query; rows unpacked as tuples (attribute access per row doubled a re-sync's read at 100k)
            states = {
                path: FileState(size, mtime_ns, sha, ident)
                for path, size, mtime_ns, sha, ident in conn.execute(select(
                    articles.c.path, articles.c.file_size, articles.c.file_mtime_ns, articles.c.file_sha, articles.c.id))
            }
            for r in conn.execute(select(bad_files)):
                states.setdefault(r.path, FileState(r.file_size, r.file_mtime_ns, None, None))
        return states

    def bad_files(self) -> list[BadFile]:
        """Files that failed to parse, by path."""
        with self._conn() as conn:
            return [BadFile(r.path, r.line, r.reason) for r in conn.execute(select(bad_files).order_by(bad_files.c.path))]


class FileWrites(WriteAccess):
    """File state changes that are not article rows."""

    def touch_file(self, article_id: str, size: int, mtime_ns: int) -> None:
        """The article's file changed size or mtime but not its bytes."""
        self.conn.execute(update(articles).where(articles.c.id == article_id).values(file_size=size, file_mtime_ns=mtime_ns))

    def set_bad_file(self, path: str, size: int, mtime_ns: int, line: int | None, reason: str) -> None:
        """Record (or re-record) why ``path`` could not be imported."""
        self.forget_bad_files([path])
        self.conn.execute(insert(bad_files).values(path=path, file_size=size, file_mtime_ns=mtime_ns, line=line, reason=reason))

    def forget_bad_files(self, paths: list[str]) -> None:
        """The files are fixed or gone."""
        if paths:
            self.conn.execute(delete(bad_files).where(bad_files.c.path.in_(paths)))
