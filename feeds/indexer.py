"""What the importer writes besides the parsed rows: topic and provider tables, URL
duplicates and related lists. Everything here runs inside the importer's one write
transaction (a ``feeds.store.Transaction``).
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .article import curated_items, lookup_hashes
from .records import Article
from .related import Doc, RelatedIndex, Vocabulary, rank_window, windows
from .store import DocRow, IndexRow, NewArticle, Provider, RawJSON, Topic, Transaction, dumps, record_json
from .taxonomy import Taxonomy, resolve_topic

BATCH = 1000
ROW_BATCH = 200  # parsed rows per insert: a parsed record with its body is ~20 KB of Python objects
DOC_PAGE = 2000  # ranking inputs read per query while streaming the store in time order
FULL_RANK = 20000  # articles to re-rank past which the whole store is ranked (and changed ids are not tracked)
# (function, jobs) -> results in order: builtin ``map``, or the importer's worker processes.
Runner = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


class Stat(Protocol):
    """What the index keeps of a file's stat (an ``os.stat_result`` or the importer's ``FileStamp``)."""

    @property
    def st_size(self) -> int: ...

    @property
    def st_mtime_ns(self) -> int: ...


def spelled_topics(names: list[str], resolver: dict[str, str]) -> dict[str, str]:
    """A record's topics: slug -> the record's first name for it, in the record's order (names
    that resolve to no slug are left out)."""
    spelled: dict[str, str] = {}
    for name in names:
        slug = resolve_topic(name, resolver)
        if slug:
            spelled.setdefault(slug, name)
    return spelled


def _new_article(article: Article, stat: Stat, sha: str, topics: dict[str, str]) -> NewArticle:
    return NewArticle(
        id=article.id, path=article.path, file_size=stat.st_size, file_mtime_ns=stat.st_mtime_ns, file_sha=sha,
        published=article.published, published_ts=int(article.published_at.timestamp()), norm_url=article.norm_url,
        provider_domain=article.provider_domain, type=article.type, quality=article.quality, heat=article.heat,
        search=f"{article.title}\n{article.record.get('excerpt') or ''}".lower(), topics=list(topics), record=RawJSON(record_json(article.record)),
        curated=sorted({c.norm_url for c in curated_items(article.record)}),
        topic_names=list(topics.values()), provider_name=article.provider_name, url_hashes=lookup_hashes(article.record),
    )


@dataclass
class Prepared:
    """One parsed record ready to store, built where it was parsed (a worker process)."""

    row: NewArticle


def prepare(article: Article, stat: Stat, sha: str, resolver: dict[str, str]) -> Prepared:
    """The row of one parsed record (topic names resolved through ``resolver``)."""
    return Prepared(_new_article(article, stat, sha, spelled_topics(article.topic_names, resolver)))


class RowWriter:
    """Parse results streamed to the database in batches (bounded memory at 100k files)."""

    def __init__(self, tx: Transaction, resolver: dict[str, str]) -> None:
        self.tx, self.resolver = tx, resolver
        self.batch: list[NewArticle] = []

    def add(self, article: Article, stat: Stat, sha: str) -> None:
        self.add_prepared(prepare(article, stat, sha, self.resolver))

    def add_prepared(self, prepared: Prepared) -> None:
        self.batch.append(prepared.row)
        if len(self.batch) >= ROW_BATCH:
            self.flush()

    def flush(self) -> None:
        self.tx.put_articles(self.batch)
        self.batch = []


def taxonomy_fingerprint(taxonomy: Taxonomy) -> str:
    payload = dumps([[t.slug, t.name] for t in taxonomy.topics.values()])
    return hashlib.sha256(payload.encode()).hexdigest()


def write_taxonomy(tx: Transaction, taxonomy: Taxonomy) -> None:
    """Taxonomy topics and providers, plus those that records name without a data file: these
    are shown by their most common spelling among the stored articles (``feeds.store.spellings``),
    whatever order the records were imported in."""
    topic_names, provider_names = tx.spelled_topics(), tx.spelled_providers()
    topic_list = [Topic(t.slug, t.name, t.data) for t in sorted(taxonomy.topics.values(), key=lambda t: (t.position, t.slug))]
    topic_list += [Topic(s, topic_names[s], {}) for s in sorted(topic_names.keys() - set(taxonomy.topics))]
    provider_list = [Provider(p.domain, p.name, p.data) for p in taxonomy.providers.values()]
    provider_list += [Provider(d, provider_names[d], {}) for d in sorted(provider_names.keys() - set(taxonomy.providers))]
    tx.replace_taxonomy(topic_list, provider_list)


def reresolve_topics(tx: Transaction, resolver: dict[str, str], pages: Iterable[list[str]]) -> None:
    """The taxonomy changed: map the topic names of the records with these ids (pages of ids,
    read as they are needed) again."""
    for ids in pages:
        records = tx.records(ids)
        tx.set_topics({i: spelled_topics(r.get("topics", []), resolver) for i, r in records.items()})


def deduplicate(tx: Transaction, rows: Sequence[IndexRow]) -> tuple[list[tuple[str, str]], set[str]]:
    """Records whose normalised URLs collide are one article: keep the published one, then the
    earliest, then the first file name. Returns (duplicate, kept) pairs and the ids whose public
    state changed."""
    groups: dict[str, list[IndexRow]] = defaultdict(list)
    for r in rows:
        groups[r.norm_url].append(r)
    duplicate_of: dict[str, str] = {}
    for members in groups.values():
        if len(members) > 1:
            members.sort(key=lambda r: (not r.published, r.published_ts, os.path.basename(r.path)))
            duplicate_of.update({m.id: members[0].id for m in members[1:]})
    changed = {r.id for r in rows if duplicate_of.get(r.id) != r.duplicate_of}
    for r in rows:
        if r.id in changed:
            tx.set_duplicate(r.id, duplicate_of.get(r.id), r.published and r.id not in duplicate_of)
    return sorted(duplicate_of.items()), changed


def _doc(vocabulary: Vocabulary, r: DocRow) -> Doc:
    return Doc(r.id, r.norm_url, vocabulary.encode(r.search), tuple(r.topics), r.published_ts, r.quality,
               frozenset(r.curated))


def _docs_by_time(tx: Transaction) -> Iterator[DocRow]:
    """Every public article's ranking inputs in time order, read a page at a time."""
    after = None
    while page := tx.public_docs_by_time(after, DOC_PAGE):
        yield from page
        after = (page[-1].published_ts, page[-1].id)


def _rank(tx: Transaction, vocabulary: Vocabulary, df: dict[int, int], total: int, wanted: set[str] | None,
          run: Runner) -> set[str]:
    """Rank the ``wanted`` articles (all when None) window by window and store their lists as
    results arrive; returns the ids ranked into them when ``wanted`` is given."""

    def jobs() -> Iterator[tuple[list[Doc], list[str], dict[int, int], int]]:
        for window, centres in windows(_doc(vocabulary, r) for r in _docs_by_time(tx)):
            ids = [d.id for d in centres if wanted is None or d.id in wanted]
            if ids:
                yield window, ids, {w: df[w] for d in window for w in d.words}, total

    picked: set[str] = set()
    for result in run(rank_window, jobs()):
        tx.set_related(result)
        if wanted is not None:
            picked.update(i for ids in result.values() for i in ids)
    return picked


def refresh_derived(tx: Transaction, touched: set[str] | None, run: Runner = map) -> list[tuple[str, str]]:
    """Deduplicate by URL, then refresh the related lists the changes may affect; returns the
    (duplicate, kept) pairs. ``touched`` holds the ids written or removed, or is None when
    more than ``FULL_RANK`` were (then every list is ranked again); it gains the ids whose public
    state the deduplication flipped.

    Memory stays flat as the store grows: deduplication reads only the URL groups that hold
    more than one article, and ranking streams the public articles in time order twice (word
    counts, then windows of ``feeds.related.windows``), holding one window at a time.
    """
    pairs, flipped = deduplicate(tx, tx.index_rows(tx.duplicate_urls()))
    everything = touched is None  # then there is no need to hold the targets' ids
    wanted = set() if touched is None else touched
    wanted.update(flipped)  # in place, not a copy
    vocabulary = Vocabulary()
    df: dict[int, int] = defaultdict(int)
    total = 0
    targets: set[str] = set()
    for r in _docs_by_time(tx):  # only word counts are kept, not rows
        total += 1
        for w in vocabulary.encode(r.search):
            df[w] += 1
        if not everything and (r.id in wanted or wanted.intersection(r.related)):
            targets.add(r.id)
            if len(targets) >= FULL_RANK:
                everything, targets = True, set()
    if everything or len(targets) * 5 > total:
        _rank(tx, vocabulary, df, total, None, run)
    elif targets:
        # a changed article's new neighbours may now rank it higher
        extra = _rank(tx, vocabulary, df, total, targets, run) - targets
        if extra:
            _rank(tx, vocabulary, df, total, extra, run)
    return pairs


_LOCAL_NEIGHBOURHOOD = 150  # per topic and side in time: the articles a single write re-scores


def refresh_local(tx: Transaction, article_ids: set[str], norm_urls: set[str],
                  before: Sequence[DocRow] = ()) -> list[tuple[str, str]]:
    """After a few records changed (``before``: their ranking inputs before the change, if
    they existed): deduplicate their URL groups, then update the related lists the change can
    affect. Returns the (duplicate, kept) pairs of those groups.

    One ranking index is built over the changed articles' neighbourhood (the
    ``_LOCAL_NEIGHBOURHOOD`` nearest in time on each side, per topic, before and after the
    change), read in one statement. In it, a changed public article gets its ranked list, and
    the lists the change can affect are found: those naming a changed article, and those of
    the articles that have a changed one among their candidates (``RelatedIndex.takers``).
    Only these are re-ranked, over their current members (read in a second statement when
    outside the neighbourhood) and the changed articles, plus their own candidates when a
    changed article may leave them; a changed article enters a list only when it scores into
    its top k. Every other list stays as it is; the changed lists are written in one bulk
    statement.

    An approximation of a full re-import, bounded by construction: word weights come from the
    neighbourhood, not the whole store, and articles farther in time than the neighbourhood
    keep lists that may name a removed article (left out when rendered) until the next full
    ``sync`` re-ranks everything; tests/test_related_writes.py measures the agreement.
    """
    pairs, flipped = deduplicate(tx, tx.index_rows(norm_urls))
    changed = article_ids | flipped
    anchors = [(slug, r.published_ts) for r in [*before, *tx.docs(changed)] for slug in (*r.topics,) or (None,)]
    rows = {r.id: r for r in tx.docs_near(anchors, _LOCAL_NEIGHBOURHOOD, also=changed)}
    vocabulary = Vocabulary()  # words numbered in time order, as the import does
    docs = {r.id: _doc(vocabulary, r) for r in sorted(rows.values(), key=lambda r: (r.published_ts, r.id))}
    df: dict[int, int] = defaultdict(int)
    for d in docs.values():
        for w in d.words:
            df[w] += 1
    index = RelatedIndex(docs.values(), df, len(docs))
    public = [i for i in sorted(changed) if i in index.pos]
    related = {i: index.neighbours(i) for i in public}
    offers: dict[str, set[str]] = defaultdict(set)  # article -> changed articles among its candidates
    for i in public:
        for j in index.takers(i):
            offers[index.docs[j].id].add(i)
    affected = sorted(r.id for r in rows.values() if r.id not in changed and (r.id in offers or changed.intersection(r.related)))
    # The affected lists are re-ranked in a second, small index: them, their current members
    # (read now if outside the neighbourhood), the changed articles and, for a list a changed
    # article may leave, its candidates; word counts are the neighbourhood's plus the members read.
    refill = {a: {index.docs[j].id for j in index.candidates(index.pos[a])} for a in affected
              if changed.intersection(rows[a].related)}
    pool = {*affected, *public, *(i for a in affected for i in rows[a].related), *(i for c in refill.values() for i in c)}
    extra = [_doc(vocabulary, r) for r in tx.docs_near([], 0, also=pool - rows.keys())] if pool - rows.keys() else []
    for d in extra:
        for w in d.words:
            df[w] += 1
    small = RelatedIndex([*(docs[i] for i in pool if i in docs), *extra], df, len(docs) + len(extra))
    for a in affected:
        current, gain = rows[a].related, offers.get(a, set())
        ranked = small.rank(small.pos[a], {small.pos[i] for i in [*current, *gain, *refill.get(a, ())] if i in small.pos})
        # a list the change leaves alone keeps the order the import ranked it in
        if ranked != current and (a in refill or gain.intersection(ranked)):
            related[a] = ranked
    tx.set_related(related)
    return pairs
