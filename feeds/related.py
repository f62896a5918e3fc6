"""Computed related articles, precomputed at import so a request does no ranking work.

Score = text similarity (idf-weighted overlap of title+excerpt words) + shared topics +
closeness in time + quality. Candidates come from the rarest shared words and from the
nearest-in-time articles of the same topics, so the work per article stays bounded; words are
kept as tuples of word numbers. The importer ranks a large store in time windows
(``windows``): each article against the ``WINDOW_MARGIN`` articles before and after it,
with word weights from the whole store, so memory stays flat however many articles there are
and the windows can be ranked in worker processes.
"""
from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .text import tokens

COMPUTED_RELATED = 5
_MAX_POSTING = 150       # a word in more articles than this says little about relatedness
_RARE_WORDS = 6          # candidate words per article
_TEXT_CANDIDATES = 30
_TOPIC_NEIGHBOURS = 8    # per topic, on each side in time
_DAY = 86400
WINDOW_BLOCK = 2000      # articles ranked per window
# Articles on each side of a window (about ±11 days at 100k articles over three years): the
# time term already weighs a story ten days away at under a fifth of a same-day one.
WINDOW_MARGIN = 1000
# Positions ahead of a ranked document for which its pairs' symmetric parts are kept: its
# topics' time neighbours are within a few dozen positions, and most pairs there are mutual.
_PAIR_REACH = 1000


class Vocabulary:
    """Word -> number, so documents hold small tuples of shared int objects."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def encode(self, text: str) -> tuple[int, ...]:
        ids = self.ids
        return tuple(sorted({ids.setdefault(w, len(ids)) for w in tokens(text)}))


@dataclass(slots=True)
class Doc:
    """What ranking needs of one public article."""

    id: str
    norm_url: str
    words: tuple[int, ...]
    topics: tuple[str, ...]
    ts: int
    quality: int | None
    exclude_urls: frozenset[str] = field(default_factory=frozenset)


_RECENCY_SCALE = 3 * _DAY


def _quality_term(quality: int | None) -> float:
    """The quality part of the score (0 to 0.05; a missing quality counts as 50)."""
    return 0.05 * (min(max(quality if quality is not None else 50, 0), 100) / 100)


class RelatedIndex:
    """Index over all public articles; ``neighbours(id)`` ranks one article's neighbours."""

    def __init__(self, docs: Iterable[Doc], df: dict[int, int] | None = None, total: int | None = None) -> None:
        """``df`` (word number -> documents containing it) and ``total`` (documents) come from
        the whole store when ``docs`` is one window of it; by default they are counted on ``docs``."""
        self.docs = sorted(docs, key=lambda d: (d.ts, d.id))
        self.pos = {d.id: i for i, d in enumerate(self.docs)}
        if df is None:
            df = defaultdict(int)
            for d in self.docs:
                for w in d.words:
                    df[w] += 1
        n = max(total or len(self.docs), 1)
        self.idf2 = {w: math.log(1 + n / df[w]) ** 2 for w in {w for d in self.docs for w in d.words}}
        self.sets = [frozenset(d.words) for d in self.docs]
        self.topic_sets = [frozenset(d.topics) for d in self.docs]
        self.norms = [math.sqrt(sum(self.idf2[w] for w in d.words)) for d in self.docs]
        self.quality = [_quality_term(d.quality) for d in self.docs]
        self.postings: dict[int, list[int]] = defaultdict(list)
        for i, d in enumerate(self.docs):
            for w in d.words:
                if 1 < df.get(w, 0) <= _MAX_POSTING:
                    self.postings[w].append(i)
        self.by_topic: dict[str, list[int]] = defaultdict(list)  # doc positions, in time order
        for i, d in enumerate(self.docs):
            for t in d.topics:
                self.by_topic[t].append(i)
        self.topic_ts = {t: [self.docs[i].ts for i in idx] for t, idx in self.by_topic.items()}

    def candidates(self, i: int) -> set[int]:
        doc = self.docs[i]
        postings, idf2 = self.postings, self.idf2
        # heaviest first, ties in word order (sorting with reverse=True keeps equal keys in order)
        rare = sorted((w for w in doc.words if w in postings), key=idf2.__getitem__, reverse=True)[:_RARE_WORDS]
        acc: dict[int, float] = defaultdict(float)
        for w in rare:
            weight = idf2[w]
            for j in postings[w]:
                acc[j] += weight
        # nlargest is sorted(..., reverse=True)[:n], ties included (documented), without sorting every document
        cands = set(heapq.nlargest(_TEXT_CANDIDATES, acc, key=acc.__getitem__))
        for t in doc.topics:
            at = bisect_left(self.topic_ts[t], doc.ts)
            members = self.by_topic[t]
            cands.update(members[max(0, at - _TOPIC_NEIGHBOURS): at + _TOPIC_NEIGHBOURS + 1])
        cands.discard(i)
        return cands

    def neighbours(self, article_id: str, k: int = COMPUTED_RELATED) -> list[str]:
        """The ``k`` best-scoring of the article's candidates (ids, best first)."""
        i = self.pos[article_id]
        return self.rank(i, self.candidates(i), k)

    def takers(self, article_id: str) -> set[int]:
        """Positions of the documents that have the article among their candidates: its
        topics' time neighbours and the documents sharing one of its rare-enough words whose
        own candidate search reaches it (what decides whether it can enter their lists)."""
        i = self.pos[article_id]
        found: set[int] = set()
        for t in self.docs[i].topics:
            members = self.by_topic[t]
            at = members.index(i)
            found.update(members[max(0, at - _TOPIC_NEIGHBOURS): at + _TOPIC_NEIGHBOURS + 1])
        sharing = {j for w in self.docs[i].words for j in self.postings.get(w, ())} - found
        found.update(j for j in sharing if i in self.candidates(j))
        found.discard(i)
        return found

    def rank(self, i: int, candidates: Iterable[int], k: int = COMPUTED_RELATED,
             pairs: dict[int, dict[int, float]] | None = None, reach: int = 0) -> list[str]:
        """The ids of the ``k`` best-scoring ``candidates`` (document positions) for the
        document at position ``i``, best first, one per URL and none sharing its own URL or
        one it curates.

        ``pairs`` (position -> {position: score without quality}) carries the symmetric part
        of a pair's score from one document's ranking to a later one's (see ``rank_window``):
        ranking ``i`` takes what was kept for it and keeps, for candidates up to ``reach``
        positions after it, what they will need (the same floats, so the same lists)."""
        doc, norm = self.docs[i], self.norms[i]
        words, topics, ts = self.sets[i], self.topic_sets[i], doc.ts
        topic_count = len(topics)
        own_url, excluded = doc.norm_url, doc.exclude_urls
        idf2, sets, norms, docs, topic_sets, quality = self.idf2, self.sets, self.norms, self.docs, self.topic_sets, self.quality
        weight = idf2.__getitem__
        scored = []
        kept = pairs.pop(i, {}) if pairs is not None else {}
        last = i + reach if pairs is not None else i
        for j in set(candidates) - {i}:
            other = docs[j]
            url = other.norm_url
            if url == own_url or url in excluded:
                continue
            base = kept.get(j)
            if base is not None:
                scored.append((-(base + quality[j]), other.id, url))
                continue
            # The shared words' weights summed in ascending word-number order (the order of
            # ``Doc.words``), so sums stay bit-identical whichever window ranks the pair; C-level
            # set intersection first, since two articles share a handful of their dozens of words.
            # Most pairs share none, one or two: a sum of two floats is the same in either order
            # (IEEE addition commutes), so only three or more are sorted.
            shared = words & sets[j]
            count = len(shared)
            if count > 2:
                text = sum(map(weight, sorted(shared)))
            elif count == 2:
                first, second = shared
                text = idf2[first] + idf2[second]
            elif count:
                text = idf2[next(iter(shared))]
            else:
                text = 0.0
            if text:
                other_norm = norms[j]
                text = text / (norm * other_norm) if norm and other_norm else 0.0
            # Score = 0.4 text + 0.2 shared topics (Jaccard) + 0.35 closeness in time + 0.05
            # quality, written out here since this loop is the ranking's hot path. Weights tuned
            # on the corpus' curated lists (bench/related_eval.py): curators pick same-week
            # stories, so closeness in time weighs almost as much as the text.
            other_topics = topic_sets[j]
            common = len(topics & other_topics)
            union = topic_count + len(other_topics) - common  # |A| + |B| - |A & B|: exact integers
            topic = common / union if union else 0.0
            recency = 1.0 / (1.0 + abs(other.ts - ts) / _RECENCY_SCALE)
            # The pair's part is symmetric (set intersections, IEEE products and sums commute;
            # the summation order is the word order): evaluated left to right as before, then
            # the candidate's quality, so the later document gets the very same float.
            base = 0.4 * text + 0.2 * topic + 0.35 * recency
            if i < j <= last:
                pairs.setdefault(j, {})[i] = base  # type: ignore[union-attr]
            scored.append((-(base + quality[j]), other.id, url))
        scored.sort()
        picked: list[str] = []
        seen_urls: set[str] = set()
        for _, other_id, url in scored:
            if url not in seen_urls:
                seen_urls.add(url)
                picked.append(other_id)
                if len(picked) == k:
                    break
        return picked


def windows(docs: Iterable[Doc], block: int = WINDOW_BLOCK, margin: int = WINDOW_MARGIN) -> Iterator[tuple[list[Doc], list[Doc]]]:
    """Split a stream of documents in time order into (window, centres): every document is a
    centre exactly once, and its window holds up to ``margin`` documents on each side of its
    block. At most ``block + 2 * margin`` documents are held at a time."""
    buf: list[Doc] = []
    start = 0  # position in buf of the next block's first centre
    for doc in docs:
        buf.append(doc)
        if len(buf) - start >= block + margin:
            yield buf, buf[start:start + block]
            cut = max(0, start + block - margin)
            buf, start = buf[cut:], start + block - cut
    if start < len(buf):
        yield buf, buf[start:]


def rank_window(job: tuple[list[Doc], list[str], dict[int, int], int], reach: int = _PAIR_REACH) -> dict[str, list[str]]:
    """Related ids of ``centres`` among ``window``, with store-wide word counts ``df`` over
    ``total`` documents (a worker-process entry point: one picklable argument), in the order of
    ``centres``; ``reach``: see ``RelatedIndex.rank``."""
    window, centres, df, total = job
    index = RelatedIndex(window, df, total)
    # Centres in time order (positions ascending), so a pair's symmetric part computed for the
    # earlier one is kept for the later one (``RelatedIndex.rank``); kept parts are dropped as
    # their document is ranked, and reach only ``reach`` positions ahead (bounded memory).
    pairs: dict[int, dict[int, float]] = {}
    out = {}
    for article_id in sorted(centres, key=index.pos.__getitem__):
        i = index.pos[article_id]
        out[article_id] = index.rank(i, index.candidates(i), pairs=pairs, reach=reach)
    return {i: out[i] for i in centres}
