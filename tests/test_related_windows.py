"""Related lists ranked in time windows (the importer's bounded-memory path) match ranking over
the whole store when a window holds everything, and windows cover every article exactly once
with bounded size; an import's stored lists match a whole-store ranking on the corpus."""
from __future__ import annotations

from collections import defaultdict

from feeds.importer import sync
from feeds.related import Doc, RelatedIndex, Vocabulary, rank_window, windows
from feeds.store import Store

from .conftest import corpus_roots


def synthetic(n: int) -> list[Doc]:
    vocab = Vocabulary()
    words = ["robot", "chip", "model", "cloud", "vision", "speech", "ethics", "data", "edge", "bank"]
    return [Doc(f"a{i:05d}", f"https://x.example/{i}", vocab.encode(" ".join(words[(i * k) % 10] for k in (1, 3, 7)) + f" w{i % 37}"),
                (f"t{i % 4}",), 1_600_000_000 + i * 3600, i % 100) for i in range(n)]


def test_windows_cover_every_doc_once_and_stay_bounded():
    docs = synthetic(1000)
    seen: list[str] = []
    for window, centres in windows(docs, block=100, margin=50):
        assert len(window) <= 200
        assert all(c in window for c in centres)
        seen += [d.id for d in centres]
    assert seen == [d.id for d in docs]


def test_one_window_ranks_like_the_whole_index():
    docs = synthetic(300)
    df: dict[int, int] = defaultdict(int)
    for d in docs:
        for w in d.words:
            df[w] += 1
    ranked: dict[str, list[str]] = {}
    for window, centres in windows(docs):
        ranked.update(rank_window((window, [d.id for d in centres], df, len(docs))))
    whole = RelatedIndex(docs)
    assert ranked == {d.id: whole.neighbours(d.id) for d in docs}


def test_import_stores_the_whole_store_ranking_on_the_corpus(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/r.db")
    sync(store, corpus_roots())
    rows = sorted((r for r in store.iter_docs() if store.article(r.id) is not None), key=lambda r: (r.published_ts, r.id))
    vocab = Vocabulary()  # words numbered in time order, as the import does (ties between equal weights follow it)
    docs = [Doc(r.id, r.norm_url, vocab.encode(r.search), tuple(r.topics), r.published_ts, r.quality, frozenset(r.curated))
            for r in rows]
    whole = RelatedIndex(docs)
    assert any(r.related for r in rows)
    assert {r.id: r.related for r in rows} == {d.id: whole.neighbours(d.id) for d in docs}
    store.close()
