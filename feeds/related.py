"""Computed related articles, precomputed at import so a request does no ranking work.

Score = text similarity (idf-weighted overlap of title+excerpt words) + shared topics +
closeness in time + quality. Candidates come from the rarest shared words and from the
nearest-in-time articles of the same topics, so the work per article stays bounded at
100k articles; words are kept as tuples of word numbers so 100k articles fit in ~50 MB.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .text import tokens

COMPUTED_RELATED = 5
_MAX_POSTING = 150       # a word in more articles than this says little about relatedness
_RARE_WORDS = 6          # candidate words per article
_TEXT_CANDIDATES = 30
_TOPIC_NEIGHBOURS = 8    # per topic, on each side in time
_DAY = 86400


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


def _score(text: float, topics_a: tuple[str, ...], topics_b: tuple[str, ...], dt: int, quality: int | None) -> float:
    union = len(set(topics_a) | set(topics_b))
    topic = len(set(topics_a) & set(topics_b)) / union if union else 0.0
    recency = 1.0 / (1.0 + abs(dt) / (3 * _DAY))
    qual = min(max(quality if quality is not None else 50, 0), 100) / 100
    # Weights tuned on the corpus' curated lists (bench/related_eval.py): curators pick
    # same-week stories, so closeness in time weighs almost as much as the text.
    return 0.4 * text + 0.2 * topic + 0.35 * recency + 0.05 * qual


class RelatedIndex:
    """Index over all public articles; ``neighbours(id)`` ranks one article's neighbours."""

    def __init__(self, docs: Iterable[Doc]) -> None:
        self.docs = sorted(docs, key=lambda d: (d.ts, d.id))
        self.pos = {d.id: i for i, d in enumerate(self.docs)}
        df: dict[int, int] = defaultdict(int)
        for d in self.docs:
            for w in d.words:
                df[w] += 1
        n = max(len(self.docs), 1)
        self.idf2 = {w: math.log(1 + n / c) ** 2 for w, c in df.items()}
        self.norms = [math.sqrt(sum(self.idf2[w] for w in d.words)) for d in self.docs]
        self.postings: dict[int, list[int]] = defaultdict(list)
        for i, d in enumerate(self.docs):
            for w in d.words:
                if 1 < df[w] <= _MAX_POSTING:
                    self.postings[w].append(i)
        self.by_topic: dict[str, list[int]] = defaultdict(list)  # doc positions, in time order
        for i, d in enumerate(self.docs):
            for t in d.topics:
                self.by_topic[t].append(i)
        self.topic_ts = {t: [self.docs[i].ts for i in idx] for t, idx in self.by_topic.items()}

    def _candidates(self, i: int) -> set[int]:
        doc = self.docs[i]
        rare = sorted((w for w in doc.words if w in self.postings), key=lambda w: -self.idf2[w])[:_RARE_WORDS]
        acc: dict[int, float] = defaultdict(float)
        for w in rare:
            weight = self.idf2[w]
            for j in self.postings[w]:
                acc[j] += weight
        cands = set(sorted(acc, key=acc.__getitem__, reverse=True)[:_TEXT_CANDIDATES])
        for t in doc.topics:
            at = bisect_left(self.topic_ts[t], doc.ts)
            members = self.by_topic[t]
            cands.update(members[max(0, at - _TOPIC_NEIGHBOURS): at + _TOPIC_NEIGHBOURS + 1])
        cands.discard(i)
        return cands

    def neighbours(self, article_id: str, k: int = COMPUTED_RELATED) -> list[str]:
        i = self.pos[article_id]
        doc, norm = self.docs[i], self.norms[i]
        words = set(doc.words)
        idf2 = self.idf2
        scored = []
        for j in self._candidates(i):
            other = self.docs[j]
            if other.norm_url == doc.norm_url or other.norm_url in doc.exclude_urls:
                continue
            shared = sum(idf2[w] for w in other.words if w in words)
            text = shared / (norm * self.norms[j]) if norm and self.norms[j] else 0.0
            scored.append((-_score(text, doc.topics, other.topics, other.ts - doc.ts, other.quality), other.id, other.norm_url))
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
