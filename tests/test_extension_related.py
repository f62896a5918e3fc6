"""The related list the extension's panel shows: one entry per headline, on the server side.

A record's curated list and the computed neighbours can name the same story under different
URLs; the API keeps the first (curated before computed) and drops the rest by normalised title.
"""
from __future__ import annotations

from feeds.article import title_key

# Across the corpus a curated entry and a computed one share this headline (different URLs).
ARTICLE = "2021-01-11-review-microsoft-azure-ai-and-machine-learning-aims-for-the-enterprise"


def test_title_key_ignores_case_punctuation_and_width():
    assert title_key("Meta goes open-source!") == title_key("  META goes open source ") == "meta goes open source"
    assert title_key("Ｆｕｌｌ_width") == "full width"
    assert title_key("AI in 2023") != title_key("AI in 2024")


def test_related_lists_carry_each_headline_once(corpus_client):
    ids = set()
    for topic in corpus_client.get("/api/v1/topics").json["value"]:
        page = 1
        while page:
            body = corpus_client.get(f"/api/v1/topics/{topic['slug']}/articles?per_page=100&page={page}").json
            ids.update(a["id"] for a in body["value"])
            page = body.get("nextPage") and page + 1
    assert ARTICLE in ids
    for article_id in ids:
        body = corpus_client.get(f"/api/v1/articles/{article_id}").json
        keys = [title_key(r["title"]) for r in body["related"]]
        assert len(keys) == len(set(keys)), article_id
        assert title_key(body["title"]) not in keys, article_id
    article = corpus_client.get(f"/api/v1/articles/{ARTICLE}").json
    sources = [r["source"] for r in article["related"]]
    assert "curated" in sources and "computed" in sources and len(sources) == 13
