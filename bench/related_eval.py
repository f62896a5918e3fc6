"""How well computed neighbours recover the curators' own choices.

For each corpus record whose curated ``related`` items are themselves articles in the store,
rank that record's neighbours with the curated items *not* excluded, and count how many of
those items appear in the computed top 5. A recency-only ranking is the baseline. Ranking goes
through the import's own path (time windows with store-wide word counts, ``rank_window``).

Usage: python bench/related_eval.py   (needs ../shared/corpus)
"""
from __future__ import annotations

import tempfile

from collections import defaultdict

from common import record
from corpus_tree import corpus_dir

from feeds.importer import sync
from feeds.related import Doc, Vocabulary, rank_window, windows
from feeds.store import Store

SITES = ["everyday-cc-ai", "everyday-cc-azure", "everyday-cc-powerapps", "everyday-cc-powerbi"]


def main() -> None:
    corpus = corpus_dir()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/eval.db")
        sync(store, [corpus / s for s in SITES])
        rows = list(store.iter_docs())
        store.close()
    vocab = Vocabulary()
    # Evaluate over every stored record (published or not): curated pairs are rare in 108 records.
    # Curated items are not excluded here (unlike at import): recovering them is the test.
    docs = [Doc(r.id, r.norm_url, vocab.encode(r.search), tuple(r.topics), r.published_ts, r.quality) for r in rows]
    by_url = {d.norm_url: d.id for d in docs}
    df: dict[int, int] = defaultdict(int)
    for d in docs:
        for w in d.words:
            df[w] += 1
    ranked: dict[str, list[str]] = {}
    for window, centres in windows(sorted(docs, key=lambda d: (d.ts, d.id))):
        ranked.update(rank_window((window, [d.id for d in centres], df, len(docs))))
    by_id = {d.id: d for d in docs}
    total = found = baseline = 0
    for r in rows:
        # ``curated``: the normalised URLs of the record's curated related items
        wanted = {by_url[u] for u in r.curated if u in by_url and by_url[u] != r.id}
        if not wanted:
            continue
        top = ranked[r.id]
        me = by_id[r.id]
        recent = sorted((d for d in docs if d.id != r.id), key=lambda d: (abs(d.ts - me.ts), d.ts, d.id))[:5]
        total += len(wanted)
        found += len(wanted & set(top))
        baseline += len(wanted & {d.id for d in recent})
    lines = ["| ranking | curated items recovered in top 5 |", "|---|---:|",
             f"| topicfeed related (text + topics + time + quality) | {found} / {total} ({found / total:.0%}) |",
             f"| baseline: 5 nearest in time | {baseline} / {total} ({baseline / total:.0%}) |", "",
             f"Over the {len(rows)} corpus records; {total} curated related items point at records in the store."]
    record("Related articles: recovery of curated choices (bench/related_eval.py)", lines)


if __name__ == "__main__":
    main()
