"""Sync the index with content roots: parse what changed, report what is wrong, keep the rest.

``sync`` first diffs the tree against the index's file states (``diff_tree``: no parsing),
then applies the difference in one write transaction, so a crash leaves the previous index
serving. Unchanged files (same size and mtime, or same SHA-256) are not parsed again.
``feeds.indexer`` builds the rows, taxonomy tables, duplicates and related lists.
"""
from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
from array import array
from collections import deque
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import RecordError
from .indexer import Prepared, RowWriter, prepare, refresh_derived, refresh_local, reresolve_topics, taxonomy_fingerprint, write_taxonomy
from .recordfiles import RECORD_DIRS, Override, find_record, scan_roots
from .records import parse_article
from .store import BadFile, FileState, Store, Transaction, dumps
from .taxonomy import Taxonomy, load_taxonomy

PARALLEL_THRESHOLD = 2000
PARSE_CHUNK = 100  # files per worker job; with two jobs per worker in flight, few parsed records wait in memory
ANALYZE_AFTER = 500  # changed records that make fresh planner statistics worth ~1 s
MASS_REMOVAL_SHARE = 0.5  # default share of the index an import may remove without being told to
Progress = Callable[[Iterable[Any], int], Iterable[Any]]


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[RecordError] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, id of the kept record)
    overrides: list[Override] = field(default_factory=list)
    kept_previous: list[str] = field(default_factory=list)  # ids whose new file is bad; old version serves

    def summary(self) -> str:
        return (f"added {len(self.added)}, updated {len(self.updated)}, unchanged {self.unchanged}, "
                f"removed {len(self.removed)}, skipped {len(self.skipped)}, duplicates {len(self.duplicates)}")


class ImportRefused(Exception):
    """An import that looks like an operator mistake (a missing or empty root, or one that would
    remove much of the index); nothing was changed. The message says what to do instead."""


def check_roots(roots: list[Path]) -> tuple[dict[str, str], list[Override]]:
    """The record files of ``roots`` (id -> path) and the overridden ones (``scan_roots``);
    ``ImportRefused`` for a root that is not a folder, or roots that hold no record at all
    (an import would empty the index)."""
    for root in roots:
        if not root.is_dir():
            raise ImportRefused(f"content directory not found: {root}")
    files, overrides = scan_roots(roots)
    if not files:
        raise ImportRefused(f"no record files (_news/*.md or _archive/_news/*.md) under {', '.join(map(str, roots))}: "
                            "is this the content root (the folder that holds _news/)?")
    return files, overrides


def guard_mass_removal(indexed: int, removed: int, share: float) -> None:
    """Refuse to remove more than ``share`` (0..1) of ``indexed`` articles: usually a wrong or
    half-mounted folder. ``share`` >= 1 disables the guard."""
    if indexed and share < 1 and removed > indexed * share:
        raise ImportRefused(f"this import would remove {removed} of {indexed} indexed articles "
                            f"(more than {share:.0%}); check the content folders, or pass --allow-mass-removal")


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker process when its parent (pid ``parent``) dies (prctl
    PR_SET_PDEATHSIG), so a killed import leaves no parse worker behind and a killed
    ``serve`` no HTTP worker (``server.cli.wsgi_app``); elsewhere a no-op."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG (linux/prctl.h)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect (not "== 1": serve may be PID 1)
        os._exit(1)


class FileStamp(NamedTuple):
    """What the index keeps of a file's ``stat``: a tuple is a tenth of an ``os.stat_result``."""

    st_size: int
    st_mtime_ns: int


Job = tuple[str, str, FileStamp, str | None]  # (id, file, stamp, SHA-256 of the indexed version of this file)


class ChangedFiles:
    """The files a sync parses, held compactly: at 100k files a list of ``Job`` tuples and
    their path strings was a fifth of the import's memory. Paths are rebuilt from a folder
    number and the id (``<folder>/<id>.md``, as ``scan_roots`` makes them); stamps sit in
    arrays; known SHA-256s are kept only for files that were indexed."""

    def __init__(self) -> None:
        self.folders: list[str] = []
        self._folder_number: dict[str, int] = {}
        self.ids: list[str] = []
        self._folder, self._size, self._mtime = array("I"), array("q"), array("q")
        self.known: dict[str, str] = {}

    def add(self, article_id: str, path: str, stamp: FileStamp, known_sha: str | None) -> None:
        """One more file to parse: ``path`` is ``<folder>/<article_id>.md``."""
        folder = os.path.dirname(path)
        number = self._folder_number.setdefault(folder, len(self.folders))
        if number == len(self.folders):
            self.folders.append(folder)
        self.ids.append(article_id)
        self._folder.append(number)
        self._size.append(stamp.st_size)
        self._mtime.append(stamp.st_mtime_ns)
        if known_sha is not None:
            self.known[article_id] = known_sha

    def __len__(self) -> int:
        return len(self.ids)

    def job(self, i: int) -> Job:
        """The ``i``-th file as a ``Job`` (id, path, stamp, known SHA-256 or None)."""
        article_id = self.ids[i]
        path = os.path.join(self.folders[self._folder[i]], article_id + ".md")
        return article_id, path, FileStamp(self._size[i], self._mtime[i]), self.known.get(article_id)

    def jobs(self, start: int = 0, stop: int | None = None) -> list[Job]:
        """Jobs ``start`` to ``stop`` (all by default), built on demand."""
        return [self.job(i) for i in range(start, len(self) if stop is None else min(stop, len(self)))]

    def __iter__(self) -> Iterator[Job]:
        return (self.job(i) for i in range(len(self)))


@dataclass
class TreeDiff:
    """What differs between the content tree and the index, before anything is parsed."""

    changed: ChangedFiles     # size or mtime differ
    removed: list[str]        # indexed ids with no file any more
    stale_bad: list[str]      # bad-file paths that are gone
    still_bad: list[RecordError]  # unchanged bad files, reported again with their stored reason


def diff_tree(files: dict[str, str], states: dict[str, FileState], bad: list[BadFile],
              report: SyncReport) -> TreeDiff:
    """Compare ``files`` (id -> path) with the index by (size, mtime_ns) stamps, one ``stat``
    per file and no reading; unreadable files and unchanged ones are counted in ``report``
    on the way. The result holds no reference to ``files`` or ``states``, so the caller can
    drop them before parsing."""
    changed = ChangedFiles()
    for article_id, path in files.items():
        try:
            stat = os.stat(path)
        except OSError as exc:
            report.skipped.append(RecordError(path, f"cannot read: {exc.strerror}"))
            continue
        prev = states.get(path)
        if prev and prev.size == stat.st_size and prev.mtime_ns == stat.st_mtime_ns and prev.article_id in (article_id, None):
            if prev.article_id is not None:  # an unchanged bad file is reported as skipped again, not as unchanged
                report.unchanged += 1
            continue
        known = prev.sha if prev and prev.article_id == article_id else None
        changed.add(article_id, path, FileStamp(stat.st_size, stat.st_mtime_ns), known)
    indexed_ids = {s.article_id for s in states.values() if s.article_id}
    stale_bad: list[str] = []
    still_bad: list[RecordError] = []
    if bad:  # usually none: only then are the tree's paths collected
        current_paths = set(files.values())
        reparsed = {files[i] for i in changed.ids}
        stale_bad = [b.path for b in bad if b.path not in current_paths]
        still_bad = [RecordError(b.path, b.reason, b.line) for b in bad if b.path in current_paths and b.path not in reparsed]
    return TreeDiff(changed=changed, removed=sorted(indexed_ids - files.keys()), stale_bad=stale_bad, still_bad=still_bad)


def _parse_one(job: Job, resolver: dict[str, str]) -> tuple[str, Prepared | RecordError | None]:
    """Read, parse and prepare one file's row: (its SHA-256, the row or what is wrong with the
    file, or ``None`` when its bytes match the known SHA: only touched)."""
    article_id, path, stat, known_sha = job
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return "", RecordError(path, f"cannot read: {exc.strerror}")
    sha = hashlib.sha256(data).hexdigest()
    if sha == known_sha:
        return sha, None
    try:
        return sha, prepare(parse_article(data, path, article_id), stat, sha, resolver)
    except RecordError as exc:
        return sha, exc


def _parse_chunk(chunk: tuple[list[Job], dict[str, str]]) -> list[tuple[str, Prepared | RecordError | None]]:
    jobs, resolver = chunk
    return [_parse_one(job, resolver) for job in jobs]


WORKER_MEMORY_MB = 96  # what one worker may add to the import's memory at its peak (a ranking window)


def _memory_headroom_mb() -> float | None:
    """Memory this process may still take (MB): the machine's ``MemAvailable``, capped by what
    its memory cgroup (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) leaves above the anon
    memory already charged to it (page cache does not count: the kernel drops it first).
    None when neither can be read."""
    found: list[float] = []
    try:
        with open("/proc/meminfo") as fh:
            found += [int(line.split()[1]) / 1024 for line in fh if line.startswith("MemAvailable:")]
    except OSError:
        pass
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controllers == "":  # cgroup v2
                    base, limit_file, stat_key = f"/sys/fs/cgroup{path}", "memory.max", "anon"
                elif "memory" in controllers.split(","):  # cgroup v1
                    base, limit_file, stat_key = f"/sys/fs/cgroup/memory{path}", "memory.limit_in_bytes", "total_rss"
                else:
                    continue
                try:
                    limit = open(f"{base}/{limit_file}").read().strip()
                    stats = dict(line.split() for line in open(f"{base}/memory.stat"))
                except (OSError, ValueError):
                    continue
                if limit.isdigit() and int(limit) < 1 << 60:  # "max" / a huge number: no limit
                    found.append((int(limit) - int(stats.get(stat_key, 0))) / 2**20)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def worker_count() -> int:
    """Worker processes for this machine: the cores this process may run on (``taskset`` and
    cgroup cpusets count), at most four, and no more than the free memory holds at
    ``WORKER_MEMORY_MB`` each (a 512 MB VPS gets fewer); 1 means everything runs in this process."""
    count = min(len(os.sched_getaffinity(0)), 4)
    headroom = _memory_headroom_mb()
    if headroom is not None:
        count = min(count, int(headroom // WORKER_MEMORY_MB))
    return max(1, count)


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """Start the import's worker processes (forked: they share this process's pages).

    ``sync`` starts them before it reads the tree when a large import is coming, so what they
    inherit is the interpreter and its modules, not the tree's listing: a page the parent
    changes after the fork stays in the workers as a private copy. The garbage collector's
    generations are frozen while forking, so a collection in a worker does not write to (and
    so copy) every object it inherited. Each worker dies with this process (``die_with_parent``).
    """
    gc.freeze()
    try:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=die_with_parent, initargs=(os.getpid(),))
        pool.submit(int).result()  # with fork, the first task starts every worker: do it while frozen
    finally:
        gc.unfreeze()
    return pool


class Workers:
    """The import's worker processes, started on first use (or by ``start``) and stopped on
    exit. ``map`` keeps at most two jobs per worker in flight, so memory stays bounded however
    many jobs there are (the database writer in this process is the slower side)."""

    def __init__(self, count: int | None = None) -> None:
        self.count = worker_count() if count is None else count
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """Whether worker processes are running."""
        return self._pool is not None

    def start(self) -> None:
        """Fork the workers now (no-op with one core or when already started)."""
        if self.count >= 2 and self._pool is None:
            self._pool = _worker_pool(self.count)

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]:
        """``fn`` over ``jobs``, results in order; in this process when there is one core."""
        if self.count < 2:
            yield from map(fn, jobs)
            return
        self.start()
        assert self._pool is not None
        pending: deque = deque()
        for job in jobs:
            pending.append(self._pool.submit(fn, job))
            if len(pending) >= self.count * 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def _record_files_hint(roots: list[Path]) -> int:
    """About how many record files ``roots`` hold (directory entries named ``*.md``), counted
    without building anything: milliseconds at 100k files."""
    count = 0
    for root in roots:
        for sub in RECORD_DIRS:
            try:
                with os.scandir(os.path.join(root, sub)) as it:
                    count += sum(1 for e in it if e.name.endswith(".md"))
            except OSError:
                continue
    return count


def _parse_all(jobs: ChangedFiles, resolver: dict[str, str], workers: Workers) -> Iterator[tuple[Job, tuple]]:
    """(job, ``_parse_one`` result) in job order, on every core when there is enough work to
    pay for the worker processes. Results carry no copy of the job's strings (ids and paths
    of a whole tree would be held twice in the report)."""
    if len(jobs) < PARALLEL_THRESHOLD and not workers.started:
        yield from ((job, _parse_one(job, resolver)) for job in jobs)
        return
    starts = range(0, len(jobs), PARSE_CHUNK)
    chunks = ((jobs.jobs(i, i + PARSE_CHUNK), resolver) for i in starts)
    for start, parsed in zip(starts, workers.map(_parse_chunk, chunks)):
        yield from zip(jobs.jobs(start, start + PARSE_CHUNK), parsed)


class _DryRun(Exception):
    """Raised inside the transaction of a dry run, so the database rolls everything back."""


@contextmanager
def _transaction(store: Store, dry_run: bool) -> Iterator[Transaction]:
    """``store.write()``, rolled back at the end when ``dry_run``."""
    try:
        with store.write() as tx:
            yield tx
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


def sync(store: Store, roots: list[Path], progress: Progress | None = None,
         max_removal: float = MASS_REMOVAL_SHARE, dry_run: bool = False) -> SyncReport:
    """Make the index match ``roots`` exactly (later roots override earlier ones).

    Raises ``ImportRefused`` (nothing changed) for a missing root, roots without any record,
    or when more than ``max_removal`` (a share, 0..1; >= 1 allows anything) of the indexed
    articles would be removed. ``dry_run`` reports what would change and rolls it all back.
    A sync that changes no article, bad file or taxonomy entry (at most the stamps of touched
    files) keeps the store's version, so the server's caches stay valid.
    """
    roots = [Path(r) for r in roots]
    with Workers() as workers:
        if workers.count >= 2 and _record_files_hint(roots) - store.stats()["articles"] >= PARALLEL_THRESHOLD:
            workers.start()  # a large import is coming: fork before this process holds the tree's listing
        return _sync(store, roots, workers, progress, max_removal, dry_run)


def _sync(store: Store, roots: list[Path], workers: Workers, progress: Progress | None, max_removal: float,
          dry_run: bool) -> SyncReport:
    files, overrides = check_roots(roots)
    report = SyncReport(overrides=overrides)
    taxonomy = load_taxonomy(roots)
    report.skipped += taxonomy.errors
    states = store.file_states()
    indexed_ids = {s.article_id for s in states.values() if s.article_id}
    taxonomy_changed = store.get_meta("taxonomy") != taxonomy_fingerprint(taxonomy)
    roots_meta = dumps([str(r.resolve()) for r in roots])
    roots_changed = store.get_meta("roots") != roots_meta
    diff = diff_tree(files, states, store.bad_files(), report)
    guard_mass_removal(len(indexed_ids), len(diff.removed), max_removal)
    was_bad = {path for path, state in states.items() if state.article_id is None}
    del files, states  # the per-file maps of the whole tree are not needed past the diff
    report.skipped += diff.still_bad
    report.removed = diff.removed
    resolver = taxonomy.resolver()

    with _transaction(store, dry_run) as tx:
        parsed = RowWriter(tx, resolver)
        changed: set[str] = set()
        bad_changed = bool(diff.stale_bad)
        results = _parse_all(diff.changed, resolver, workers)
        for (article_id, path, stat, _), (_, outcome) in (progress(results, len(diff.changed)) if progress else results):
            if outcome is None:  # touched, same bytes
                tx.touch_file(article_id, stat.st_size, stat.st_mtime_ns)
                report.unchanged += 1
            elif isinstance(outcome, RecordError):
                report.skipped.append(outcome)
                tx.set_bad_file(path, stat.st_size, stat.st_mtime_ns, outcome.line, outcome.reason)
                bad_changed = True
                if article_id in indexed_ids:
                    report.kept_previous.append(article_id)
            else:
                if path in was_bad:  # a bad file that is now fixed
                    tx.forget_bad_files([path])
                    bad_changed = True
                (report.updated if article_id in indexed_ids else report.added).append(article_id)
                changed.add(article_id)
                outcome.row.id = article_id  # this process's string: the change tracking holds every id
                parsed.add_prepared(outcome)
        parsed.flush()
        tx.forget_bad_files(diff.stale_bad)
        tx.delete_articles(diff.removed)
        if taxonomy_changed:
            reresolve_topics(tx, resolver, changed)
            tx.set_meta("taxonomy", taxonomy_fingerprint(taxonomy))
        write_taxonomy(tx, taxonomy, parsed)
        if changed or diff.removed or taxonomy_changed:
            # workers for ranking only when they already run or much changed: a small re-sync
            # inside the server must not fork it
            large = workers.started or len(changed) + len(diff.removed) >= PARALLEL_THRESHOLD
            changed.update(diff.removed)  # in place: at 100k ids a copy of the set is 4 MB more at the peak
            report.duplicates = refresh_derived(tx, changed, workers.map if large else map)
        else:
            report.duplicates = tx.duplicates()
        if roots_changed:
            tx.set_meta("roots", roots_meta)
        tx.keep_version = not (changed or diff.removed or taxonomy_changed or roots_changed or bad_changed
                               or tx.noted_articles or tx.noted_feeds)
    if not dry_run and len(report.added) + len(report.updated) + len(report.removed) > ANALYZE_AFTER:
        store.analyze()
    report.skipped.sort(key=lambda e: e.path)
    return report


def index_one(store: Store, roots: list[Path], article_id: str) -> SyncReport:
    """Index one record after its file changed, in its own transaction (see ``index_record``);
    falls back to ``sync`` if the taxonomy changed."""
    roots = [Path(r) for r in roots]
    taxonomy = load_taxonomy(roots)
    if store.get_meta("taxonomy") != taxonomy_fingerprint(taxonomy):
        return sync(store, roots, max_removal=1.0)
    with store.write() as tx:
        return index_record(tx, roots, taxonomy, article_id)


def taxonomy_current(store: Store, taxonomy: Taxonomy) -> bool:
    """Whether the index was built with this taxonomy (else only a full ``sync`` is right)."""
    return store.get_meta("taxonomy") == taxonomy_fingerprint(taxonomy)


def index_record(tx: Transaction, roots: list[Path], taxonomy: Taxonomy, article_id: str) -> SyncReport:
    """Index one record inside ``tx`` without scanning the tree: milliseconds at 100k articles.
    Its related list is ranked among its topics' neighbours in time; the next full ``sync``
    ranks it against everything. Raises ``RecordError`` for an invalid file (the caller's
    transaction then rolls back)."""
    report = SyncReport()
    path = find_record(roots, article_id)
    old = tx.norm_url(article_id)
    before = tx.docs([article_id]) if old else []
    writer = RowWriter(tx, taxonomy.resolver())
    urls = {old} if old else set()
    if path is None:
        if old:
            tx.delete_articles([article_id])
            report.removed.append(article_id)
    else:
        data = path.read_bytes()
        article = parse_article(data, str(path), article_id)
        writer.add(article, path.stat(), hashlib.sha256(data).hexdigest())
        writer.flush()
        tx.forget_bad_files([str(path)])
        (report.updated if old else report.added).append(article_id)
        urls.add(article.norm_url)
    write_taxonomy(tx, taxonomy, writer)
    report.duplicates = refresh_local(tx, {article_id}, urls, before)
    return report
