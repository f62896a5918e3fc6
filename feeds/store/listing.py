"""The content tree's listing, diffed against the index inside the import's transaction.

Why a temporary table: a listing of the tree (id -> path -> stamp) held in Python costs a few
hundred bytes per file, so an import's memory grew with the tree (35 MB at 100k files, 350 MB
at 1M). Written to a temporary table of the import's connection in batches, it is compared
with ``articles`` and ``bad_files`` in SQL and read back a page at a time: the importer holds
one batch of paths, never the tree. The table lives only on that connection and inside its
transaction (a killed import leaves nothing), and is dropped when the import ends.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, delete, exists, func, insert, or_, select

from sqlalchemy.schema import CreateTable

from .access import WriteAccess
from .files import BadFile
from .schema import articles, bad_files

PAGE = 1000  # rows read back per query

_temporary = MetaData()
# Loaded without keys (appending is several times faster than inserting into a text-keyed
# B-tree in scandir's order); ``settle_listing`` indexes it once loaded.
listing = Table(
    "import_listing", _temporary,
    Column("path", Text, nullable=False),
    Column("article_id", String(255), nullable=False),
    Column("prec", Integer, nullable=False),             # later folders win: higher is stronger
    Column("file_size", BigInteger, nullable=False),     # -1: the file could not be stat'ed (reported, kept as is)
    Column("file_mtime_ns", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
# covering: the diff walks the listing in id order through it, so its probes of the articles'
# id index are in order too (in scandir's order they were random reads: 3x the time at 100k)
_listing_by_id = Index("ix_import_listing_article", listing.c.article_id, listing.c.path, listing.c.file_size,
                       listing.c.file_mtime_ns)
_listing_by_path = Index("ix_import_listing_path", listing.c.path)
# The listed files that differ from the index, found in one pass over the listing and read
# back by ``seq`` (in path order).
changed = Table(
    "import_changed", _temporary,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("article_id", String(255), nullable=False),
    Column("path", Text, nullable=False),
    Column("file_size", BigInteger, nullable=False),
    Column("file_mtime_ns", BigInteger, nullable=False),
    Column("indexed_path", Text),          # the id's indexed file, if the id is indexed
    Column("indexed_sha", String(64)),
    Column("bad_size", BigInteger),        # the path's bad-file record, if any
    Column("bad_mtime_ns", BigInteger),
    Column("bad_line", Integer),
    Column("bad_reason", Text),
    prefixes=["TEMPORARY"],
)
# an indexed article no listed file has (correlated with the query's ``articles``)
_UNLISTED = ~exists().where(listing.c.article_id == articles.c.id)


class ListedFile(NamedTuple):
    """A listed file that differs from the index (new, changed stamp, or an unchanged bad file).

    ``known_sha`` is the SHA-256 of the indexed version when this very path is the id's indexed
    file (same bytes: only re-stamp it); ``indexed`` says whether the id is in the index at all
    (from any path); ``was_bad`` whether the path is recorded as a bad file; ``still_bad`` is
    that record when the bad file's stamp did not change (report it again, do not parse)."""

    article_id: str
    path: str
    size: int
    mtime_ns: int
    known_sha: str | None
    indexed: bool
    was_bad: bool
    still_bad: BadFile | None


class ListingWrites(WriteAccess):
    """Mixed into ``Transaction``: ``start_listing``, ``add_listed`` batches, ``settle_listing``
    (which also finds what differs), then the reads; ``end_listing`` drops the tables."""

    def start_listing(self) -> None:
        """Empty listing tables on this transaction's connection."""
        self.end_listing()
        self.conn.execute(CreateTable(listing))  # its indexes come once it is loaded

    def end_listing(self) -> None:
        """Drop the listing tables."""
        for table in (changed, listing):
            table.drop(self.conn, checkfirst=True)

    def add_listed(self, rows: list[tuple[str, str, int, int, int]]) -> None:
        """A batch of record files: (path, article id, precedence, size, mtime in ns)."""
        if not rows:
            return
        compiled = insert(listing).compile(dialect=self.conn.dialect)
        if compiled.positional:  # straight to the driver's executemany: SQLAlchemy's per-row binding doubled the cost
            order = [[c.name for c in listing.columns].index(name) for name in compiled.positiontup or ()]
            in_order = order == list(range(len(listing.columns)))
            self.conn.exec_driver_sql(str(compiled), rows if in_order else [tuple(row[i] for i in order) for row in rows])
        else:
            self.conn.execute(insert(listing), [dict(zip(listing.columns.keys(), row)) for row in rows])

    def settle_listing(self) -> tuple[list[tuple[str, str]], int]:
        """Keep the strongest file of each id (highest precedence), drop the others, and find
        the files that differ from the index. Returns the (overridden path, path used instead)
        pairs, weakest first, and how many readable listed files are unchanged (their id's
        indexed file, same size and mtime)."""
        _listing_by_id.create(self.conn)
        shared = select(listing.c.article_id).group_by(listing.c.article_id).having(func.count() > 1)
        rows = self.conn.execute(select(listing.c.article_id, listing.c.path, listing.c.prec)
                                 .where(listing.c.article_id.in_(shared))
                                 .order_by(listing.c.article_id, listing.c.prec.desc())).all()
        pairs: list[tuple[int, str, str]] = []
        winner: dict[str, str] = {}
        for article_id, path, prec in rows:
            if article_id in winner:
                pairs.append((prec, path, winner[article_id]))
            else:
                winner[article_id] = path
        losers = [path for _, path, _ in pairs]
        if losers:
            _listing_by_path.create(self.conn, checkfirst=True)
        for start in range(0, len(losers), PAGE):
            self.conn.execute(delete(listing).where(listing.c.path.in_(losers[start:start + PAGE])))
        changed.create(self.conn)
        differs = (select(listing.c.article_id, listing.c.path, listing.c.file_size, listing.c.file_mtime_ns,
                          articles.c.path, articles.c.file_sha, bad_files.c.file_size, bad_files.c.file_mtime_ns,
                          bad_files.c.line, bad_files.c.reason)
                   .select_from(listing.outerjoin(articles, articles.c.id == listing.c.article_id)
                                .outerjoin(bad_files, bad_files.c.path == listing.c.path))
                   .where(listing.c.article_id >= "",  # always true: lets the planner walk the listing by id
                          listing.c.file_size >= 0,
                          or_(articles.c.id.is_(None), articles.c.path != listing.c.path,
                              articles.c.file_size != listing.c.file_size,
                              articles.c.file_mtime_ns != listing.c.file_mtime_ns))
                   .order_by(listing.c.path))
        self.conn.execute(insert(changed).from_select(
            ["article_id", "path", "file_size", "file_mtime_ns", "indexed_path", "indexed_sha", "bad_size",
             "bad_mtime_ns", "bad_line", "bad_reason"], differs))
        readable = self.conn.execute(select(func.count()).select_from(listing).where(listing.c.file_size >= 0)).scalar()
        return [(loser, won) for _, loser, won in sorted(pairs)], (readable or 0) - self.changed_count()

    def listed_count(self) -> int:
        """Record files listed (one per id after ``settle_listing``)."""
        return self.conn.execute(select(func.count()).select_from(listing)).scalar() or 0

    def changed_count(self) -> int:
        """Readable listed files that differ from the index (after ``settle_listing``)."""
        return self.conn.execute(select(func.count()).select_from(changed)).scalar() or 0

    def changed_listed(self) -> Iterator[ListedFile]:
        """Every readable listed file that differs from the index, by path, read a page at a
        time (the caller may write between pages)."""
        after = 0
        while rows := self.conn.execute(select(changed).where(changed.c.seq > after)
                                        .order_by(changed.c.seq).limit(PAGE)).all():
            for seq, article_id, path, size, mtime_ns, a_path, sha, b_size, b_mtime, line, reason in rows:
                same = a_path == path
                still_bad = (BadFile(path, line, reason) if reason is not None and not same
                             and (b_size, b_mtime) == (size, mtime_ns) else None)
                yield ListedFile(article_id, path, size, mtime_ns, sha if same else None, a_path is not None,
                                 reason is not None, still_bad)
            after = rows[-1][0]

    def unlisted_count(self) -> int:
        """Indexed articles whose id no listed file has (what a sync removes)."""
        return self.conn.execute(select(func.count()).select_from(articles).where(_UNLISTED)).scalar() or 0

    def unlisted_ids(self) -> Iterator[list[str]]:
        """Those articles' ids, a page at a time in id order (the caller may delete each page
        before asking for the next)."""
        after = ""
        while ids := list(self.conn.execute(select(articles.c.id).where(articles.c.id > after, _UNLISTED)
                                            .order_by(articles.c.id).limit(PAGE)).scalars()):
            yield ids
            after = ids[-1]

    def unlisted_bad_paths(self) -> list[str]:
        """Recorded bad files that are no listed file any more (gone, or overridden)."""
        if not self.conn.execute(select(func.count()).select_from(bad_files)).scalar():
            return []
        _listing_by_path.create(self.conn, checkfirst=True)
        return list(self.conn.execute(select(bad_files.c.path).where(
            ~exists().where(listing.c.path == bad_files.c.path)).order_by(bad_files.c.path)).scalars())

    def listed_indexed_ids(self) -> Iterator[list[str]]:
        """The ids of indexed articles that a listed file holds, a page at a time in id order."""
        after = ""
        while ids := list(self.conn.execute(
                select(articles.c.id).where(articles.c.id > after, ~_UNLISTED).order_by(articles.c.id).limit(PAGE)).scalars()):
            yield ids
            after = ids[-1]
