"""How well computed neighbours recover the curators' own choices.

For each corpus record whose curated ``related`` items are themselves articles in the store,
rank that record's neighbours with the curated items *not* excluded, and count how many of
those items appear in the computed top 5. A recency-only ranking is the baseline.

Usage: python bench/related_eval.py   (needs ../shared/corpus)
"""
from __future__ import annotations

import json
import sys
import tempfile

from common import BENCH, record

from feeds.importer import sync
from feeds.related import Doc, RelatedIndex, Vocabulary
from feeds.store import Store, articles
from feeds.urlnorm import normalize_url

SITES = ["everyday-cc-ai", "everyday-cc-azure", "everyday-cc-powerapps", "everyday-cc-powerbi"]


def main() -> None:
    corpus = BENCH.parent.parent / "shared" / "corpus"
    if not corpus.is_dir():
        sys.exit(f"corpus not found at {corpus}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/eval.db")
        sync(store, [corpus / s for s in SITES])
        with store.engine.connect() as conn:
            rows = conn.execute(articles.select()).all()
    vocab = Vocabulary()
    # Evaluate over every stored record (published or not): curated pairs are rare in 108 records.
    docs = [Doc(r.id, r.norm_url, vocab.encode(r.search), tuple(json.loads(r.topics)), r.published_ts, r.quality)
            for r in rows]
    by_url = {d.norm_url: d.id for d in docs}
    index = RelatedIndex(docs)
    total = found = baseline = 0
    for r in rows:
        wanted = set()
        for item in json.loads(r.record).get("related") or []:
            url = item.get("webUrl") or item.get("originalUrl") if isinstance(item, dict) else None
            try:
                target = by_url.get(normalize_url(url)) if url else None
            except ValueError:
                target = None
            if target and target != r.id:
                wanted.add(target)
        if not wanted:
            continue
        top = index.neighbours(r.id, 5)
        me = index.docs[index.pos[r.id]]
        recent = sorted((d for d in index.docs if d.id != r.id), key=lambda d: abs(d.ts - me.ts))[:5]
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
