"""``RelatedIndex.rank`` scores inline for speed; these generated cases pin it to the scoring
formula written out plainly (idf-weighted cosine of the words, Jaccard of the topics, closeness
in time, quality), float for float, and to its rules: one article per URL, never its own URL or
one it curates, best first, ties by id."""
from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict

from hypothesis import given, settings, strategies as st

from feeds.related import (_RARE_WORDS, _TEXT_CANDIDATES, _TOPIC_NEIGHBOURS, COMPUTED_RELATED, Doc, RelatedIndex,
                           rank_window)

_DAY = 86400


def reference_rank(index: RelatedIndex, i: int, candidates: set[int], k: int = COMPUTED_RELATED) -> list[str]:
    """The ranking as the module documents it, computed the slow, obvious way."""
    doc = index.docs[i]
    scored = []
    for j in candidates - {i}:
        other = index.docs[j]
        if other.norm_url == doc.norm_url or other.norm_url in doc.exclude_urls:
            continue
        shared = sum(index.idf2[w] for w in sorted(set(doc.words) & set(other.words)))
        norm_a = math.sqrt(sum(index.idf2[w] for w in doc.words))
        norm_b = math.sqrt(sum(index.idf2[w] for w in other.words))
        text = shared / (norm_a * norm_b) if norm_a and norm_b else 0.0
        union = len(set(doc.topics) | set(other.topics))
        topic = len(set(doc.topics) & set(other.topics)) / union if union else 0.0
        recency = 1.0 / (1.0 + abs(other.ts - doc.ts) / (3 * _DAY))
        quality = min(max(other.quality if other.quality is not None else 50, 0), 100) / 100
        score = 0.4 * text + 0.2 * topic + 0.35 * recency + 0.05 * quality
        scored.append((-score, other.id, other.norm_url))
    picked, urls = [], set()
    for _, other_id, url in sorted(scored):
        if url not in urls:
            urls.add(url)
            picked.append(other_id)
    return picked[:k]


docs_strategy = st.lists(
    st.tuples(
        st.lists(st.integers(0, 30), max_size=12),       # word numbers
        st.lists(st.sampled_from("abcde"), max_size=3),  # topics
        st.integers(0, 40 * _DAY),                       # time
        st.one_of(st.none(), st.integers(-20, 150)),     # quality, also out of 0..100
        st.integers(0, 12),                              # URL number: some articles share one
        st.lists(st.integers(0, 12), max_size=2),        # curated URL numbers
    ),
    min_size=2, max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(docs_strategy)
def test_rank_equals_the_plain_formula(raw):
    docs = [Doc(f"a{n:03d}", f"u{url}", tuple(sorted(set(words))), tuple(dict.fromkeys(topics)), ts, quality,
                frozenset(f"u{c}" for c in curated))
            for n, (words, topics, ts, quality, url, curated) in enumerate(raw)]
    index = RelatedIndex(docs)
    everyone = set(range(len(docs)))
    for i in range(len(docs)):
        assert index.rank(i, everyone) == reference_rank(index, i, everyone)
        candidates = index.candidates(i)
        assert index.rank(i, candidates) == reference_rank(index, i, candidates)


def reference_candidates(index: RelatedIndex, i: int) -> set[int]:
    """Candidates as first written (a full sort of the text matches, by negated weight)."""
    doc = index.docs[i]
    rare = sorted((w for w in doc.words if w in index.postings), key=lambda w: -index.idf2[w])[:_RARE_WORDS]
    acc: dict[int, float] = defaultdict(float)
    for w in rare:
        for j in index.postings[w]:
            acc[j] += index.idf2[w]
    cands = set(sorted(acc, key=acc.__getitem__, reverse=True)[:_TEXT_CANDIDATES])
    for t in doc.topics:
        at = bisect_left(index.topic_ts[t], doc.ts)
        members = index.by_topic[t]
        cands.update(members[max(0, at - _TOPIC_NEIGHBOURS): at + _TOPIC_NEIGHBOURS + 1])
    cands.discard(i)
    return cands


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 12), max_size=8), st.lists(st.sampled_from("ab"), max_size=2),
                          st.integers(0, 5 * _DAY)), min_size=2, max_size=90))
def test_candidates_equal_the_full_sort(raw):
    # few words and many articles: many ties in weight, and more text matches than are kept
    docs = [Doc(f"a{n:03d}", f"u{n}", tuple(sorted(set(words))), tuple(dict.fromkeys(topics)), ts, None)
            for n, (words, topics, ts) in enumerate(raw)]
    index = RelatedIndex(docs)
    for i in range(len(docs)):
        assert index.candidates(i) == reference_candidates(index, i)


def test_rank_skips_own_and_curated_urls_and_repeats():
    docs = [Doc("a", "u1", (1, 2), ("t",), 0, 50, frozenset({"u3"})),
            Doc("b", "u1", (1, 2), ("t",), 0, 50),  # the same URL as the article itself
            Doc("c", "u2", (1, 2), ("t",), 0, 90),
            Doc("d", "u2", (1, 2), ("t",), 0, 10),  # a second article with c's URL, scored lower
            Doc("e", "u3", (1, 2), ("t",), 0, 50),  # a URL the article curates
            Doc("f", "u4", (9,), ("x",), 30 * _DAY, None)]
    index = RelatedIndex(docs)
    assert index.rank(0, set(range(len(docs)))) == ["c", "f"]


@settings(max_examples=150, deadline=None)
@given(docs_strategy, st.integers(1, 60))
def test_a_window_keeping_pair_scores_ranks_each_centre_as_alone(raw, reach):
    # rank_window carries a pair's symmetric score part from one centre to a later one: every
    # list must be exactly the list ranked from scratch (scores float for float)
    docs = [Doc(f"a{n:03d}", f"u{url}", tuple(sorted(set(words))), tuple(dict.fromkeys(topics)), ts, quality,
                frozenset(f"u{c}" for c in curated))
            for n, (words, topics, ts, quality, url, curated) in enumerate(raw)]
    df: dict[int, int] = defaultdict(int)
    for d in docs:
        for w in d.words:
            df[w] += 1
    centres = [d.id for d in docs[::2]] + [d.id for d in docs[1::2]]  # not in time order
    index = RelatedIndex(docs, df, len(docs))
    alone = {i: index.neighbours(i) for i in centres}
    together = rank_window((docs, centres, dict(df), len(docs)), reach)
    assert together == alone and list(together) == centres
    assert rank_window((docs, centres, dict(df), len(docs))) == alone  # the default reach
