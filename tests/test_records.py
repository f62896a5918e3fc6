"""Parsing and validating single records: every kind of bad input gets a precise message."""
from __future__ import annotations

import pytest

from feeds.errors import RecordError
from feeds.records import MAX_RECORD_BYTES, parse_article

GOOD = """---
title: "A good record"
excerpt: "Plain text"
publishedDateTime: 2022-07-18T10:00:00-07:00
webUrl: "https://www.example.com/a"
quality: 10
heat: -3
topics:
  - AI
---
"""


def parse(text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return parse_article(data, "_news/x.md", "x")


def test_good_record_keeps_offsets_and_types():
    a = parse(GOOD)
    assert a.title == "A good record"
    assert a.published_at.utcoffset().total_seconds() == -7 * 3600
    assert a.heat == -3 and a.quality == 10 and a.published is True
    assert a.norm_url == "example.com/a"
    assert a.record["publishedDateTime"] == "2022-07-18T10:00:00-07:00"


def test_naive_and_date_only_values_become_utc():
    a = parse(GOOD.replace("2022-07-18T10:00:00-07:00", "2022-07-18 10:00:00"))
    assert a.published_at.tzinfo is not None and a.published_at.utcoffset().total_seconds() == 0
    b = parse(GOOD.replace("2022-07-18T10:00:00-07:00", "2022-07-18"))
    assert b.published_at.isoformat() == "2022-07-18T00:00:00+00:00"


def test_source_secured_is_kept_opaque_and_renamed():
    a = parse(GOOD.replace("quality: 10", 'quality: 10\nsecured: "abc;def=="'))
    assert "secured" not in a.record
    assert a.record["sourceSecured"] == "abc;def=="


def test_control_characters_are_stripped():
    a = parse(GOOD.replace("Plain text", "Plain\\x01 text\\x0b").replace('excerpt: "', 'excerpt: "'))
    assert "\x01" not in a.record["excerpt"] and "\x0b" not in a.record["excerpt"]


def test_body_is_kept_as_content():
    a = parse(GOOD + "\nSome *markdown* body.\n")
    assert a.record["content"].startswith("Some *markdown*")


BAD = [
    ("not utf-8", GOOD.encode().replace(b"Plain", b"Pl\xffain"), "not UTF-8", 3),
    ("no front matter", "title: x\n", "no front matter", 1),
    ("unterminated", "---\ntitle: x\nwebUrl: https://a.b/\n", "not terminated", 1),
    ("invalid yaml", GOOD.replace('title: "A good record"', 'title: "A good record'), "invalid YAML", None),
    ("not a mapping", "---\n- a\n- b\n---\n", "must be a mapping", 2),
    ("heat not integer", GOOD.replace("heat: -3", 'heat: "hot"'), "field 'heat': expected an integer, got 'hot'", 7),
    ("missing title", GOOD.replace('title: "A good record"\n', ""), "field 'title': is required", None),
    ("missing url", GOOD.replace('webUrl: "https://www.example.com/a"\n', ""), "needs a 'webUrl' or an 'originalUrl'", 2),
    ("bad date", GOOD.replace("2022-07-18T10:00:00-07:00", "yesterday"), "field 'publishedDateTime': not an ISO 8601", 4),
    ("javascript url", GOOD.replace("https://www.example.com/a", "javascript:alert(1)"), "field 'webUrl': only http(s) URLs", 5),
    ("published not bool", GOOD.replace("quality: 10", "quality: 10\npublished: maybe"), "field 'published': expected true or false", 7),
    ("topics not list", GOOD.replace("topics:\n  - AI", "topics: {a: 1}"), "field 'topics': expected a list of names", 8),
    ("alias bomb", "---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: [*b, *b, *b, *b, *b, *b, *b, *b]\ntitle: t\nwebUrl: https://a.b/\n---\n", "aliases", 3),
    ("oversized", GOOD + "x" * (MAX_RECORD_BYTES + 1), "over the", None),
]


@pytest.mark.parametrize("case,data,reason,line", BAD, ids=[c[0] for c in BAD])
def test_bad_records_name_file_field_and_line(case, data, reason, line):
    with pytest.raises(RecordError) as info:
        parse(data)
    err = info.value
    assert reason in err.reason
    assert err.path == "_news/x.md"
    if line is not None:
        assert err.line == line
    assert str(err).startswith("_news/x.md")
