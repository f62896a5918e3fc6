"""URL normalisation: the DESIGN.md example, and real corpus URLs with their variants."""
from __future__ import annotations

import pytest

from feeds.records import URL_FIELDS, parse_article
from feeds.urlnorm import normalize_url, url_hash

from .conftest import corpus_roots


def test_design_example():
    assert normalize_url("https://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.html?utm_source=x#top") \
        == "infoworld.com/article/3667433/open-source-isnt-working-for-ai.html"
    assert url_hash("infoworld.com/article/3667433/open-source-isnt-working-for-ai.html") == \
        "13b6628ca8a0500cf2ee079bc4e2ca70b840551b8c8ada07540345f6899a6497"


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "ftp://x/y", "mailto:a@b", "//no-scheme/x", ""])
def test_non_http_urls_are_refused(bad):
    with pytest.raises(ValueError):
        normalize_url(bad)


def test_corpus_urls_and_variants_normalise_together():
    records = [parse_article(p.read_bytes(), str(p), p.stem) for root in corpus_roots()
               for sub in ("_news", "_archive/_news") for p in sorted((root / sub).glob("*.md"))]
    checked = 0
    for article in records:
        for field in URL_FIELDS:
            url = article.record.get(field)
            if not url:
                continue
            norm = normalize_url(url)
            assert "://" not in norm and not norm.startswith("www.") and "#" not in norm
            for variant in (url.replace("https://", "http://", 1), url + "#section",
                            url + ("&" if "?" in url else "?") + "utm_medium=email&fbclid=XYZ",
                            url.replace("://www.", "://WWW.", 1)):
                assert normalize_url(variant) == norm, (field, variant)
            checked += 1
    assert checked > 250
    amp = [a for a in records if a.record.get("cdnAmpWebUrl", "").startswith("https://www-infoworld-com.cdn")]
    assert amp and all(normalize_url(a.record["cdnAmpWebUrl"]) == normalize_url(a.record["ampWebUrl"]) for a in amp)
