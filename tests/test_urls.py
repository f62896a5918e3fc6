"""URL normalisation: the DESIGN.md example, and real corpus URLs with their variants."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.article import URL_FIELDS, lookup_hashes
from feeds.records import parse_article
from feeds.urlnorm import is_http_url, normalize_url, url_hash

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


def test_hosts_use_uts46_like_browsers_not_idna_2003():
    assert normalize_url("https://faß.de/x") == "xn--fa-hia.de/x"
    assert b"fass.de" == "faß.de".encode("idna")  # what the old rule (IDNA 2003) produced
    assert normalize_url("https://FAß.de/x") == normalize_url("https://xn--fa-hia.de/x")


@pytest.mark.parametrize("bad", ["https://example.com:99999/", "https://example.com:abc/", "https://a\u200db.example/",
                                 "https://\u00ad/", "https://exa mple.com/", "http://[::1/", 42, None])
def test_unparseable_urls_are_value_errors_and_not_links(bad):
    with pytest.raises(ValueError):
        normalize_url(bad)
    assert not is_http_url(bad)


@settings(max_examples=3000, deadline=None)
@given(url=st.one_of(st.text(max_size=40), st.builds("https://{}".format, st.text(max_size=30))))
def test_any_text_either_normalises_to_ascii_or_is_a_value_error(url):
    try:
        norm = normalize_url(url)
    except ValueError:
        assert not is_http_url(url)
        return
    assert is_http_url(url) and norm.isascii() and "#" not in norm and normalize_url("https://" + norm) == norm


def test_lookup_hashes_recompute_what_the_api_serves():
    checked = 0
    records = [parse_article(p.read_bytes(), str(p), p.stem) for root in corpus_roots()
               for p in sorted((root / "_news").glob("*.md"))]
    for article in records:
        pairs = lookup_hashes(article.record)
        assert url_hash(article.norm_url) in pairs
        assert all(url_hash(normalize_url(u)) == h for h, u in pairs.items())
        checked += 1
    assert checked > 40
    idn = lookup_hashes({"webUrl": "https://faß.de/a", "originalUrl": "https://xn--fa-hia.de/a/", "ampWebUrl": 5})
    assert idn == {url_hash("xn--fa-hia.de/a"): "https://xn--fa-hia.de/a/"}
