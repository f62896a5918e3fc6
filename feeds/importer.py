"""Sync the index with content roots: parse what changed, report what is wrong, keep the rest.

``sync`` works in one write transaction, so a crash leaves the previous index serving: it
lists the tree into a temporary table (``feeds.store.listing``: one ``stat`` per file, no
reading), diffs it against the index's file states in SQL, and parses what differs, streamed
page by page through the worker processes. Unchanged files (same size and mtime, or same
SHA-256) are not parsed again. Nothing per article is held in this process (the report keeps
counts and a few example ids), so its memory stays flat as the tree grows.
``feeds.indexer`` builds the rows, taxonomy tables, duplicates and related lists.
"""
from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
from collections import deque
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import islice
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import RecordError
from .indexer import (FULL_RANK, Prepared, RowWriter, prepare, refresh_derived, refresh_local, reresolve_topics,
                      taxonomy_fingerprint, write_taxonomy)
from .recordfiles import Override, find_record, list_records
from .records import parse_article
from .store import ListedFile, Store, Transaction, dumps
from .taxonomy import Taxonomy, load_taxonomy

PARALLEL_THRESHOLD = 2000
PARSE_CHUNK = 100  # files per worker job; with two jobs per worker in flight, few parsed records wait in memory
LIST_BATCH = 2000  # listed files written to the listing table per statement
SAMPLE = 20  # example ids a report keeps per kind (added, updated, removed)
ANALYZE_AFTER = 500  # changed records that make fresh planner statistics worth ~1 s
MASS_REMOVAL_SHARE = 0.5  # default share of the index an import may remove without being told to
Progress = Callable[[Iterable[Any], int], Iterable[Any]]


@dataclass
class IdTally:
    """How many articles a sync added (or updated, removed), with the first ``SAMPLE`` of their
    ids as examples: a report of a whole tree holds no per-article list. ``len`` is the count."""

    count: int = 0
    sample: list[str] = field(default_factory=list)

    def add(self, article_id: str) -> None:
        """Count one more id (kept as an example while there are fewer than ``SAMPLE``)."""
        self.count += 1
        if len(self.sample) < SAMPLE:
            self.sample.append(article_id)

    def __len__(self) -> int:
        return self.count


@dataclass
class SyncReport:
    """What a sync did. Per-file problems (``skipped``, ``kept_previous``), URL duplicates and
    overrides are listed in full: there is one per bad, duplicate or shadowed file."""

    added: IdTally = field(default_factory=IdTally)
    updated: IdTally = field(default_factory=IdTally)
    unchanged: int = 0
    removed: IdTally = field(default_factory=IdTally)
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


def check_roots(roots: list[Path]) -> None:
    """``ImportRefused`` for a root that is not a folder."""
    for root in roots:
        if not root.is_dir():
            raise ImportRefused(f"content directory not found: {root}")


def list_tree(tx: Transaction, roots: list[Path], report: SyncReport) -> None:
    """Write the record files of ``roots`` to ``tx``'s listing table in batches, keep one per id
    (later roots, and ``_news/`` over ``_archive/_news/``; the others go to ``report.overrides``),
    diff it against the index, and report files that cannot be stat'ed; ``report.unchanged``
    counts the files whose stamps match the index. ``ImportRefused`` when the roots hold no
    record at all (an import would empty the index)."""
    tx.start_listing()
    files = list_records(roots)
    while batch := list(islice(files, LIST_BATCH)):
        report.skipped += [RecordError(path, error) for path, *_, error in batch if error]
        tx.add_listed([f[:5] for f in batch])
    overrides, report.unchanged = tx.settle_listing()
    report.overrides += [Override(path, winner) for path, winner in overrides]
    if not tx.listed_count():
        raise ImportRefused(f"no record files (_news/*.md or _archive/_news/*.md) under {', '.join(map(str, roots))}: "
                            "is this the content root (the folder that holds _news/)?")


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
    """What the index keeps of a file's ``stat``."""

    st_size: int
    st_mtime_ns: int


def _parse_one(job: ListedFile, resolver: dict[str, str]) -> tuple[str, Prepared | RecordError | None]:
    """Read, parse and prepare one file's row: (its SHA-256, the row or what is wrong with the
    file, or ``None`` when its bytes match the indexed version's SHA: only touched)."""
    try:
        with open(job.path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return "", RecordError(job.path, f"cannot read: {exc.strerror}")
    sha = hashlib.sha256(data).hexdigest()
    if sha == job.known_sha:
        return sha, None
    try:
        return sha, prepare(parse_article(data, job.path, job.article_id), FileStamp(job.size, job.mtime_ns), sha,
                            resolver)
    except RecordError as exc:
        return sha, exc


def _parse_chunk(chunk: tuple[list[ListedFile], dict[str, str]]) -> list[tuple[str, Prepared | RecordError | None]]:
    jobs, resolver = chunk
    return [_parse_one(job, resolver) for job in jobs]


WORKER_MEMORY_MB = 96  # what one worker may add to the import's memory at its peak, at most (a ranking window)
# The peak PSS of an import's process tree that sizes its workers (the import_memory_mb
# setting): each phase forks as many workers as fit beside this process's own memory, by what
# one adds to the tree's PSS there (measured at 10k and 100k articles, bench/import_bench.py).
MEMORY_BUDGET_MB = 150
PARSE_WORKER_MB = 42
RANK_WORKER_MB = 50


def own_pss_mb() -> float | None:
    """This process's proportional set size (MB, ``/proc/self/smaps_rollup``); None elsewhere."""
    try:
        with open("/proc/self/smaps_rollup") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("Pss:"))
    except (OSError, StopIteration, ValueError):
        return None


def _cgroup_headroom_mb(root: str, path: str, limit_file: str, stat_key: str, v2: bool) -> list[float]:
    """What the memory cgroup ``path`` (under the hierarchy mounted at ``root``) and, for
    cgroup v2, each of its ancestors leaves above the anon memory charged to it, in MB: a limit
    set on a parent (a systemd slice, a container) binds too. cgroup v1 gives the ancestors'
    limit itself, as ``hierarchical_memory_limit``."""
    found: list[float] = []
    while True:
        try:
            limit = open(f"{root}{path}/{limit_file}").read().strip()
            stats = dict(line.split() for line in open(f"{root}{path}/memory.stat"))
        except (OSError, ValueError):
            stats, limit = {}, ""
        limits = [int(x) for x in (limit, stats.get("hierarchical_memory_limit", "")) if x.isdigit()]
        used = int(stats.get(stat_key, 0))
        found += [(x - used) / 2**20 for x in limits if x < 1 << 60]  # "max" / a huge number: no limit
        if not v2 or path in ("", "/"):
            return found
        path = os.path.dirname(path.rstrip("/"))


def _memory_headroom_mb() -> float | None:
    """Memory this process may still take (MB): the machine's ``MemAvailable``, capped by what
    its memory cgroups (v2 ``memory.max`` up the hierarchy, v1 ``memory.limit_in_bytes`` and
    ``hierarchical_memory_limit``) leave above the anon memory already charged to them (page
    cache does not count: the kernel drops it first). None when neither can be read."""
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
                    found += _cgroup_headroom_mb("/sys/fs/cgroup", path, "memory.max", "anon", True)
                elif "memory" in controllers.split(","):  # cgroup v1
                    found += _cgroup_headroom_mb("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", "total_rss", False)
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

    ``sync`` starts them once the tree is listed and diffed, when enough files changed; this
    process holds nothing of the tree then (the listing is in the database), so what they
    inherit is the interpreter and its modules. The garbage collector's
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
    many jobs there are (the database writer in this process is the slower side). How many run
    is ``count`` (cores and free memory) capped, for each ``map``, by what fits in ``budget_mb``."""

    def __init__(self, count: int | None = None, budget_mb: float = MEMORY_BUDGET_MB) -> None:
        self.count = worker_count() if count is None else count
        self.budget_mb = budget_mb
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0

    @property
    def started(self) -> bool:
        """Whether worker processes are running."""
        return self._pool is not None

    def start(self, size: int | None = None) -> None:
        """Fork ``size`` workers (``count`` by default) now; no-op with one core or when started."""
        if self.count >= 2 and self._pool is None:
            self._size = self.count if size is None else size
            self._pool = _worker_pool(self._size)

    def fit(self, worker_mb: float) -> int:
        """How many workers to use for jobs that add ``worker_mb`` each to the tree's PSS: the
        running ones, else at most ``count`` and as many as fit beside this process in
        ``budget_mb`` (0: run the jobs in this process; always 0 on one core)."""
        if self.count < 2:
            return 0
        if self._pool is not None:
            return self._size
        own = own_pss_mb()
        if own is None or worker_mb <= 0:
            return self.count
        return max(0, min(self.count, int((self.budget_mb - own) // worker_mb)))

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any], worker_mb: float = 0,
            min_size: int = 1) -> Iterator[Any]:
        """``fn`` over ``jobs``, results in order, in as many workers as ``fit(worker_mb)`` gives,
        or in this process when that is fewer than ``min_size``."""
        size = self.fit(worker_mb)
        if size < min_size:
            yield from map(fn, jobs)
            return
        self.start(size)
        assert self._pool is not None
        pending: deque = deque()
        for job in jobs:
            pending.append(self._pool.submit(fn, job))
            if len(pending) >= self._size * 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def stop(self) -> None:
        """Stop the workers (the next ``map`` forks fresh ones)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parse_all(jobs: Iterable[ListedFile], count: int, resolver: dict[str, str],
               workers: Workers) -> Iterator[tuple[ListedFile, tuple]]:
    """(job, ``_parse_one`` result) in job order, on every core when there are enough jobs
    (``count``) to pay for the worker processes. ``jobs`` is read as the workers need it: only
    the chunks in flight are held."""
    if count < PARALLEL_THRESHOLD and not workers.started:
        yield from ((job, _parse_one(job, resolver)) for job in jobs)
        return
    sent: deque[list[ListedFile]] = deque()  # the chunks in flight, in order

    def chunks() -> Iterator[tuple[list[ListedFile], dict[str, str]]]:
        while chunk := list(islice(jobs, PARSE_CHUNK)):
            sent.append(chunk)
            yield chunk, resolver

    for parsed in workers.map(_parse_chunk, chunks(), PARSE_WORKER_MB):
        yield from zip(sent.popleft(), parsed)


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
         max_removal: float = MASS_REMOVAL_SHARE, dry_run: bool = False,
         memory_mb: float = MEMORY_BUDGET_MB) -> SyncReport:
    """Make the index match ``roots`` exactly (later roots override earlier ones).

    Raises ``ImportRefused`` (nothing changed) for a missing root, roots without any record,
    or when more than ``max_removal`` (a share, 0..1; >= 1 allows anything) of the indexed
    articles would be removed. ``dry_run`` reports what would change and rolls it all back.
    ``memory_mb`` sizes the worker processes (``Workers``): the peak PSS of the process tree
    to stay under, in MB. A sync that changes no article, bad file or taxonomy entry (at most the stamps of touched
    files) keeps the store's version, so the server's caches stay valid.
    """
    roots = [Path(r) for r in roots]
    check_roots(roots)
    with Workers(budget_mb=memory_mb) as workers:
        return _sync(store, roots, workers, progress, max_removal, dry_run)


def _sync(store: Store, roots: list[Path], workers: Workers, progress: Progress | None, max_removal: float,
          dry_run: bool) -> SyncReport:
    report = SyncReport()
    taxonomy = load_taxonomy(roots)
    report.skipped += taxonomy.errors
    taxonomy_changed = store.get_meta("taxonomy") != taxonomy_fingerprint(taxonomy)
    roots_meta = dumps([str(r.resolve()) for r in roots])
    roots_changed = store.get_meta("roots") != roots_meta
    resolver = taxonomy.resolver()

    with _transaction(store, dry_run) as tx:
        list_tree(tx, roots, report)
        guard_mass_removal(tx.stats()["articles"], tx.unlisted_count(), max_removal)
        if taxonomy_changed:  # before parsing: what is parsed now is resolved with the new taxonomy anyway
            reresolve_topics(tx, resolver, tx.listed_indexed_ids())
            tx.set_meta("taxonomy", taxonomy_fingerprint(taxonomy))
        # the ids written or removed, for the ranking pass; None past FULL_RANK (everything is re-ranked)
        changed: set[str] | None = set()
        bad_changed = False
        writer = RowWriter(tx, resolver)

        def to_parse() -> Iterator[ListedFile]:
            for job in tx.changed_listed():
                if job.still_bad:  # an unchanged bad file: reported again with its stored reason, not parsed
                    report.skipped.append(RecordError(job.still_bad.path, job.still_bad.reason, job.still_bad.line))
                else:
                    yield job

        count = tx.changed_count()
        results = _parse_all(to_parse(), count, resolver, workers)
        for job, (_, outcome) in (progress(results, count) if progress else results):
            if outcome is None:  # touched, same bytes
                tx.touch_file(job.article_id, job.size, job.mtime_ns)
                report.unchanged += 1
            elif isinstance(outcome, RecordError):
                report.skipped.append(outcome)
                tx.set_bad_file(job.path, job.size, job.mtime_ns, outcome.line, outcome.reason)
                bad_changed = True
                if job.indexed:
                    report.kept_previous.append(job.article_id)
            else:
                if job.was_bad:  # a bad file that is now fixed
                    tx.forget_bad_files([job.path])
                    bad_changed = True
                (report.updated if job.indexed else report.added).add(job.article_id)
                changed = _track(changed, [job.article_id])
                writer.add_prepared(outcome)
        writer.flush()
        # Parsing leaves each worker's heap fragmented (freed YAML objects keep their arenas):
        # ranking gets freshly forked workers, 5-10 MB smaller each.
        workers.stop()
        stale_bad = tx.unlisted_bad_paths()
        tx.forget_bad_files(stale_bad)
        bad_changed |= bool(stale_bad)
        for ids in tx.unlisted_ids():
            tx.delete_articles(ids)
            for article_id in ids:
                report.removed.add(article_id)
            changed = _track(changed, ids)
        tx.end_listing()
        write_taxonomy(tx, taxonomy)
        written = len(report.added) + len(report.updated) + len(report.removed)
        if written or taxonomy_changed:
            # workers for ranking only when much changed: a small re-sync inside the server must not fork it
            large = written >= PARALLEL_THRESHOLD
            # one ranking worker would cost a worker's memory (it grows to its full size as
            # this process touches the pages they shared) for little: this process only writes
            # the lists meanwhile. So two or more, else ranking runs here.
            rank = partial(workers.map, worker_mb=RANK_WORKER_MB, min_size=2)
            report.duplicates = refresh_derived(tx, changed, rank if large else map)
        else:
            report.duplicates = tx.duplicates()
        if roots_changed:
            tx.set_meta("roots", roots_meta)
        tx.keep_version = not (written or taxonomy_changed or roots_changed or bad_changed or tx.noted_anything())
    if not dry_run and len(report.added) + len(report.updated) + len(report.removed) > ANALYZE_AFTER:
        store.analyze()
    report.skipped.sort(key=lambda e: e.path)
    return report


def _track(changed: set[str] | None, ids: Iterable[str]) -> set[str] | None:
    """``changed`` with ``ids`` added, or None (untracked) once it would pass ``FULL_RANK``."""
    if changed is None:
        return None
    changed.update(ids)
    return None if len(changed) > FULL_RANK else changed


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
            report.removed.add(article_id)
    else:
        data = path.read_bytes()
        article = parse_article(data, str(path), article_id)
        writer.add(article, path.stat(), hashlib.sha256(data).hexdigest())
        writer.flush()
        tx.forget_bad_files([str(path)])
        (report.updated if old else report.added).add(article_id)
        urls.add(article.norm_url)
    write_taxonomy(tx, taxonomy)
    report.duplicates = refresh_local(tx, {article_id}, urls, before)
    return report
