"""Topic slugs (issue 8, class 3): distinct names get distinct, non-empty slugs, existing slugs
never change, the result does not depend on import order, and ambiguous taxonomies are reported."""
from __future__ import annotations

import re
import shutil
from functools import partial
from pathlib import Path
from unicodedata import normalize

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.importer import sync
from feeds.records import parse_article
from feeds.taxonomy import load_taxonomy, name_key, resolve_topic, topic_slug
from feeds.text import slugify
from server import create_app, get_store

from .conftest import REPO, corpus_roots

nfkc = partial(normalize, "NFKC")
GOLDEN = REPO / "tests" / "fixtures" / "golden-content"


def _old_rule(name: str, taxonomy) -> str:
    """The rule every existing slug was made with (before issue 8)."""
    table = {t.slug: t.slug for t in taxonomy.topics.values()}
    table.update({t.name.lower(): t.slug for t in taxonomy.topics.values()})
    return table.get(name.lower()) or slugify(name)


def test_every_slug_the_corpus_and_golden_content_produce_is_unchanged():
    checked = 0
    for root in [*corpus_roots(), GOLDEN]:
        taxonomy = load_taxonomy([root])
        assert not taxonomy.errors, [str(e) for e in taxonomy.errors]
        resolver = taxonomy.resolver()
        names = {t.name for t in taxonomy.topics.values()}
        for sub in ("_news", "_archive/_news"):
            for path in sorted((root / sub).glob("*.md")):
                try:
                    names.update(parse_article(path.read_bytes(), str(path), path.stem).topic_names)
                except ValueError:
                    continue
        for name in names:
            assert resolve_topic(name, resolver) == _old_rule(name, taxonomy), (root.name, name)
            checked += 1
    assert checked > 30


def test_c_sharp_and_c_plus_plus_are_two_topics():
    slugs = {name: topic_slug(name) for name in ("C", "C#", "C++", "F#", "C sharp")}
    assert slugs == {"C": "c", "C#": "c-sharp", "C++": "c-plus-plus", "F#": "f-sharp", "C sharp": "c-sharp"}


def test_names_made_only_of_non_latin_letters_get_a_slug():
    assert re.fullmatch(r"topic--[0-9a-f]{10}", topic_slug("人工知能"))
    assert topic_slug("人工知能") != topic_slug("機械学習") != topic_slug("Москва")
    assert topic_slug("AI 🤖").startswith("ai--") and topic_slug("AI 🤖") != topic_slug("AI")


NAMES = st.text(st.sampled_from(list("aBz09 -_.&'#+$") + list("éÉßçñ") + list("σΣς") + list("人工知能") + ["🤖", "\u200b", "Ａ"]),
                min_size=1, max_size=12)


@settings(max_examples=2000, deadline=None)
@given(a=NAMES, b=NAMES)
def test_distinct_names_get_distinct_nonempty_slugs(a, b):
    for name in (a, b):
        slug = topic_slug(name)
        assert slug and re.fullmatch(r"[a-z0-9]+(-{1,2}[a-z0-9]+)*", slug) and len(slug) <= 255
    same_topic = name_key(a) == name_key(b) and (name_key(a) != "" or nfkc(a.casefold()) == nfkc(b.casefold()))
    assert (topic_slug(a) == topic_slug(b)) == same_topic, (a, b)


@settings(max_examples=1000, deadline=None)
@given(name=NAMES)
def test_names_the_old_rule_handled_without_loss_keep_their_slug(name):
    # Lossless before: no symbol it dropped (#, +, $…), no letter it dropped (non-Latin), no
    # case-folding that ASCII lower-casing misses (ß).
    if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name_key(name)) and not set(name) & set("#+") \
            and all(c.casefold() == c.lower() for c in name):
        assert topic_slug(name) == slugify(name)


RECORD = """---
title: "{title}"
publishedDateTime: 2024-03-0{day}T10:00:00Z
webUrl: "https://example.org/{slug}"
topics: [{topics}]
---
"""


def _write(root: Path, files: dict[str, tuple[str, str]]) -> None:
    (root / "_news").mkdir(parents=True)
    for day, (name, (title, topics)) in enumerate(files.items(), 1):
        (root / "_news" / f"2024-03-0{day}-{name}.md").write_text(
            RECORD.format(title=title, day=day, slug=name, topics=topics), encoding="utf-8")


def test_feeds_keep_c_sharp_and_c_plus_plus_apart_whatever_the_import_order(tmp_path):
    records = {"csharp": ("Pattern matching in C#", "'C#'"), "cpp": ("Modules in C++", "'C++'"),
               "kanji": ("AI in Japanese", "人工知能"), "plain": ("Plain C", "C")}
    topic_tables = []
    for order in (list(records), list(reversed(records))):
        root = tmp_path / "-".join(order)
        _write(root, {k: records[k] for k in order})
        app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0}, root.parent / f"instance-{root.name}")
        report = sync(get_store(app), [root])
        assert not report.skipped, [str(e) for e in report.skipped]
        client = app.test_client()
        csharp = client.get("/feeds/topics/c-sharp.atom").data.decode()
        assert "Pattern matching in C#" in csharp and "Modules in C++" not in csharp and "Plain C<" not in csharp
        assert "Modules in C++" in client.get("/feeds/topics/c-plus-plus.atom").data.decode()
        kanji = client.get(f"/feeds/topics/{topic_slug('人工知能')}.json").json
        assert [i["title"] for i in kanji["items"]] == ["AI in Japanese"]
        topic_tables.append(sorted((t["slug"], t["name"]) for t in client.get("/api/v1/topics").json["value"]))
        get_store(app).close()
    assert topic_tables[0] == topic_tables[1]
    assert ("c-sharp", "C#") in topic_tables[0] and ("c-plus-plus", "C++") in topic_tables[0]


def test_ambiguous_taxonomy_entries_are_reported_at_import(tmp_path):
    root = tmp_path / "site"
    shutil.copytree(GOLDEN, root)
    topics = root / "_data" / "topics"
    (topics / "01-robotics.yaml").write_text("_id: robotics\nname: Robots\n", encoding="utf-8")  # same name as 'robots'
    (topics / "02-again.yaml").write_text("_id: robots\nname: Robots again\n", encoding="utf-8")  # same slug
    app = create_app({"API_ACCESS": "public"}, tmp_path / "instance")
    report = sync(get_store(app), [root])
    messages = [str(e) for e in report.skipped]
    assert any(m.startswith(f"{topics / '01-robotics.yaml'}:2: field 'name': topic 'Robots' (robotics) has the same name")
               for m in messages), messages
    assert any(m.startswith(f"{topics / '02-again.yaml'}:1: field '_id': slug 'robots' is also the slug of") for m in messages), messages
    get_store(app).close()


def test_two_names_of_one_topic_do_not_shift_the_other_topics_names(tmp_path):
    root = tmp_path / "site"
    _write(root, {"mixed": ("Mixed names", "AI, ai, 'C#'")})
    app = create_app({"API_ACCESS": "public"}, tmp_path / "instance")
    sync(get_store(app), [root])
    names = {t["slug"]: t["name"] for t in app.test_client().get("/api/v1/topics").json["value"]}
    assert names == {"ai": "AI", "c-sharp": "C#"}
    get_store(app).close()


def test_topic_files_with_unusable_fields_are_reported_not_served(tmp_path):
    root = tmp_path / "site"
    shutil.copytree(GOLDEN, root)
    topics = root / "_data" / "topics"
    (topics / "05-bad-images.yaml").write_text("_id: bad-images\nname: Bad\nimages: 5\n", encoding="utf-8")
    (topics / "06-bad-name.yaml").write_text("_id: bad-name\nname: [a, b]\n", encoding="utf-8")
    app = create_app({"API_ACCESS": "public"}, tmp_path / "instance")
    report = sync(get_store(app), [root])
    messages = sorted(str(e) for e in report.skipped)
    assert messages == [f"{topics / '05-bad-images.yaml'}:3: field 'images': expected a list of text",
                        f"{topics / '06-bad-name.yaml'}:2: field 'name': expected text, got list"]
    client = app.test_client()
    assert client.get("/api/v1/topics").status_code == 200 and client.get("/feeds/index.opml").status_code == 200
    get_store(app).close()


def test_taxonomy_slugs_that_are_not_url_safe_are_reported(tmp_path):
    # Found in review: `_id: ".."` put the topic's static API at /api/news/../index.json (a browser
    # resolves it to /api/index.json, and `export` wrote it there); '%', spaces, '?' and non-ASCII
    # were exported as percent-encoded file names a static host never serves at the decoded path.
    root = tmp_path / "site"
    shutil.copytree(GOLDEN, root)
    topics = root / "_data" / "topics"
    bad = {"60-dots.yaml": "'..'", "61-pct.yaml": "'%41'", "62-space.yaml": "'a b'", "63-query.yaml": "'?x'",
           "64-umlaut.yaml": "'ü'"}
    for n, (name, slug) in enumerate(bad.items()):
        (topics / name).write_text(f"_id: {slug}\nname: Bad {n}\n", encoding="utf-8")
    (topics / "65-ok.yaml").write_text("_id: Fine_1.0~x\nname: Fine\n", encoding="utf-8")
    app = create_app({"API_ACCESS": "public"}, tmp_path / "instance")
    report = sync(get_store(app), [root])
    messages = sorted(str(e) for e in report.skipped)
    assert messages == [f"{topics / name}:1: field '_id': {slug[1:-1]!r} is not a URL-safe slug (letters, digits, "
                        "'-', '_', '.', '~'; not '.' or '..')" for name, slug in sorted(bad.items())]
    slugs = [t["slug"] for t in app.test_client().get("/api/v1/topics").json["value"]]
    assert "Fine_1.0~x" in slugs and not {"..", "%41", "a b", "?x", "ü"} & set(slugs)
    get_store(app).close()


@pytest.mark.xfail(strict=True, reason="review8 finding: display names are last-parsed-wins (feeds/indexer.py "
                   "write_taxonomy); a fix needs every spelling in the index, not only this sync's")
def test_a_topics_and_a_providers_display_name_do_not_depend_on_import_history(tmp_path):
    # Found in review: two spellings of one topic ("Machine learning", "machine-learning") or of
    # one provider's name: a fresh import showed one, an index that received the records one
    # sync at a time showed whichever arrived last (feed titles, OPML and the API changed).
    first = RECORD.format(title="One", day=1, slug="one", topics="'Machine learning'").replace(
        "topics:", "provider: {domain: example.org, name: Example}\ntopics:")
    second = RECORD.format(title="Two", day=2, slug="two", topics="machine-learning").replace(
        "topics:", "provider: {domain: example.org, name: EXAMPLE}\ntopics:")
    tables = []
    for steps in ([{"one": first, "two": second}], [{"one": first}, {"two": second}], [{"two": second}, {"one": first}]):
        root = tmp_path / f"site{len(tables)}"
        (root / "_news").mkdir(parents=True)
        app = create_app({"API_ACCESS": "public", "VERSION_TTL": 0}, tmp_path / f"instance{len(tables)}")
        for step in steps:
            for name, text in step.items():
                (root / "_news" / f"2024-03-0{1 if name == 'one' else 2}-{name}.md").write_text(text, encoding="utf-8")
            assert not sync(get_store(app), [root]).skipped
        client = app.test_client()
        tables.append(([(t["slug"], t["name"]) for t in client.get("/api/v1/topics").json["value"]],
                       [(p["domain"], p["name"]) for p in client.get("/api/v1/providers").json["value"]]))
        get_store(app).close()
    assert tables[0] == tables[1] == tables[2], tables
