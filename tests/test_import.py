"""Importing content trees: the real corpus, layered roots, re-syncs, bad files, crashes."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from feeds.importer import sync
from feeds.query import FeedQuery
from feeds.records import parse_article
from feeds.store import Store
from server import get_store

from .conftest import CORPUS, copy_site, corpus_roots

BAD_FILES = {
    "2020-01-01-not-utf8.md": (b"---\ntitle: \xff\n---\n", "not UTF-8"),
    "2020-01-02-no-front-matter.md": (b"just text\n", "no front matter"),
    "2020-01-03-unterminated.md": (b"---\ntitle: x\nwebUrl: https://a.example/x\n", "not terminated"),
    "2020-01-04-invalid-yaml.md": (b"---\ntitle: [unclosed\n---\n", "invalid YAML"),
    "2020-01-05-list.md": (b"---\n- a\n---\n", "must be a mapping"),
    "2020-01-06-hot.md": (b"---\ntitle: t\nwebUrl: https://a.example/6\npublishedDateTime: 2020-01-06T00:00:00Z\nheat: hot\n---\n",
                          "field 'heat': expected an integer"),
    "2020-01-07-no-title.md": (b"---\nwebUrl: https://a.example/7\npublishedDateTime: 2020-01-07T00:00:00Z\n---\n", "'title': is required"),
    "2020-01-08-no-url.md": (b"---\ntitle: t\npublishedDateTime: 2020-01-08T00:00:00Z\n---\n", "needs a 'webUrl'"),
    "2020-01-09-bad-date.md": (b"---\ntitle: t\nwebUrl: https://a.example/9\npublishedDateTime: soon\n---\n", "not an ISO 8601"),
    "2020-01-10-js.md": (b"---\ntitle: t\nwebUrl: javascript:alert(1)\npublishedDateTime: 2020-01-10T00:00:00Z\n---\n", "only http(s)"),
    "2020-01-11-huge.md": (b"---\ntitle: t\n---\n" + b"x" * (1024 * 1024 + 10), "over the"),
    "2020-01-12-bomb.md": (b"---\na: &a [1, 2]\nb: [*a, *a]\ntitle: t\nwebUrl: https://a.example/12\n---\n", "aliases"),
}


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_whole_corpus_imports_every_wellformed_record(corpus_app):
    report = corpus_app.config["IMPORT_REPORT"]
    store = get_store(corpus_app)
    files = [p for r in corpus_roots() for sub in ("_news", "_archive/_news") for p in (r / sub).glob("*.md")]
    ids = {p.stem for p in files}
    assert report.skipped == []  # every corpus record is well-formed, including the odd ones
    assert len(report.overrides) == len(files) - len(ids) == 1  # the seed overrides its earlier version
    assert store.stats()["articles"] == len(ids)
    assert report.duplicates == [("2019-12-21-computer-vision-and-the-ccpa-what-you-need-to-know",
                                  "2019-12-20-computer-vision-and-the-ccpa-what-you-need-to-know")]
    unpublished = sum(1 for p in files if "\npublished: false" in p.read_text(encoding="utf-8") and p.stem in ids
                      and not (p.parts[-3] == "everyday-cc-ai" and (CORPUS / "seed/_news" / p.name).exists()))
    assert store.stats()["public"] == len(ids) - unpublished - 1  # minus the URL duplicate


def test_lenient_taxonomy_files_are_read(corpus_app):
    store = get_store(corpus_app)
    slugs = {t.slug: t for t in store.topics()}
    for slug in ("ai-in-finance", "ai-in-marketing", "ai-in-sales", "ai-in-education", "ai-in-security"):
        assert slug in slugs, f"topic file with trailing '---' not read: {slug}"
        assert slugs[slug].data["parent"] == "AI"
    providers = {p.domain: p for p in store.providers()}
    assert providers["theguardian.com"].data.get("taxonomy") == "organization"  # file without .md
    assert providers["infoworld.com"].name == "InfoWorld"


def test_seed_updates_record_in_place(tmp_path, app):
    site = copy_site(tmp_path / "ai")
    store = get_store(app)
    sync(store, [site])
    article_id = "2022-07-18-open-source-isnt-working-for-ai"
    before = store.article(article_id)
    assert before.record["heat"] == 89 and not before.record.get("related")
    seed = CORPUS / "seed" / "_news" / f"{article_id}.md"
    (site / "_news" / seed.name).write_bytes(seed.read_bytes())
    report = sync(store, [site])
    assert report.updated.sample == [article_id] and len(report.added) == 0
    after = store.article(article_id)
    assert after.record["heat"] == 109
    assert [r["title"] for r in after.record["related"]][0].startswith("Meta goes open source")
    assert after.id == before.id


def test_resync_skips_unchanged_and_follows_edits_and_removals(tmp_path, app):
    site = copy_site(tmp_path / "ai")
    store = get_store(app)
    first = sync(store, [site])
    version = store.version()
    again = sync(store, [site])
    assert len(again.added) == len(again.updated) == len(again.removed) == 0
    assert again.unchanged == len(first.added)
    assert again.duplicates == first.duplicates != []  # still reported when nothing changed
    # touched without change: still unchanged
    target = site / "_news" / "2021-06-29-microsoft-brings-ai-to-github-to-create-a-smart-programing-copilot-tool.md"
    os.utime(target)
    assert sync(store, [site]).unchanged == len(first.added)
    # edit title: same id; delete another: removed
    target.write_text(target.read_text(encoding="utf-8").replace("title: \"", "title: \"EDITED ", 1), encoding="utf-8")
    gone = next((site / "_news").glob("2021-03-12-*.md"))
    gone.unlink()
    report = sync(store, [site])
    assert report.updated.sample == [target.stem] and report.removed.sample == [gone.stem]
    assert store.article(target.stem).record["title"].startswith("EDITED ")
    assert store.article(gone.stem, public_only=False) is None
    assert store.version() != version


def test_bad_files_are_reported_and_nothing_else_is_lost(tmp_path, app):
    site = copy_site(tmp_path / "ai")
    good = len(list((site / "_news").glob("*.md"))) + len(list((site / "_archive/_news").glob("*.md")))
    for name, (data, _) in BAD_FILES.items():
        (site / "_news" / name).write_bytes(data)
    dup = (site / "_news" / "2099-01-01-duplicate-url.md")
    dup.write_text((site / "_news/2022-07-18-open-source-isnt-working-for-ai.md").read_text(encoding="utf-8"), encoding="utf-8")
    digest = tree_digest(site)
    report = sync(get_store(app), [site])
    reasons = {Path(e.path).name: str(e) for e in report.skipped}
    for name, (_, reason) in BAD_FILES.items():
        assert reason in reasons[name], (name, reasons.get(name))
        assert reasons[name].startswith(str(site / "_news" / name))
    assert len(report.added) == good + 1  # the duplicate-URL file is stored, marked as a duplicate
    assert ("2099-01-01-duplicate-url", "2022-07-18-open-source-isnt-working-for-ai") in report.duplicates
    assert get_store(app).article("2099-01-01-duplicate-url") is None
    assert tree_digest(site) == digest  # source files are never modified
    # bad files stay reported on an unchanged re-sync, and a fixed file is picked up
    again = sync(get_store(app), [site])
    assert {Path(e.path).name for e in again.skipped} == set(BAD_FILES)
    (site / "_news" / "2020-01-06-hot.md").write_bytes(BAD_FILES["2020-01-06-hot.md"][0].replace(b"hot", b"7"))
    fixed = sync(get_store(app), [site])
    assert fixed.added.sample == ["2020-01-06-hot"] and len(fixed.skipped) == len(BAD_FILES) - 1


def test_invalid_edit_keeps_previous_version(tmp_path, app):
    site = copy_site(tmp_path / "ai")
    store = get_store(app)
    sync(store, [site])
    path = site / "_news" / "2022-07-18-open-source-isnt-working-for-ai.md"
    path.write_text(path.read_text(encoding="utf-8").replace("heat: 89", "heat: hot"), encoding="utf-8")
    report = sync(store, [site])
    assert report.kept_previous == [path.stem]
    assert store.article(path.stem).record["heat"] == 89


def test_news_shadows_archive(tmp_path, app):
    site = copy_site(tmp_path / "ai")
    archived = next((site / "_archive/_news").glob("*.md"))
    copy = site / "_news" / archived.name
    copy.write_text(archived.read_text(encoding="utf-8").replace("title: ", "title: NEWER ", 1), encoding="utf-8")
    report = sync(get_store(app), [site])
    assert [o.path for o in report.overrides] == [str(archived)]
    assert get_store(app).article(archived.stem, public_only=False).record["title"].startswith("NEWER")


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc: Linux, like the import's worker cleanup)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_crash_mid_import_keeps_previous_index(tmp_path):
    """SIGKILL an import of 3,000 records half-way: the old index still serves, a re-run
    completes, and none of its parse workers is left running."""
    db = tmp_path / "index.db"
    small, big = tmp_path / "small", tmp_path / "big"
    from feeds.demo import write_demo_content
    write_demo_content(small, 50, seed=3)
    write_demo_content(big, 3000, seed=4)
    store = Store(f"sqlite:///{db}")
    sync(store, [small])
    before = [a.id for a in store.recent("all", None, FeedQuery(limit=10))]
    script = ("import sys; from pathlib import Path; from feeds.store import Store; from feeds.importer import sync; "
              f"sync(Store('sqlite:///{db}'), [Path('{big}')], max_removal=1.0)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    deadline = time.monotonic() + 60
    wal = db.with_name(db.name + "-wal")
    while time.monotonic() < deadline and (not wal.exists() or wal.stat().st_size < 2_000_000):
        time.sleep(0.02)  # wait until the import is writing its transaction
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert workers, "the import ran no parse workers: the test no longer covers their cleanup"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(map(_alive, workers)):
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "parse workers outlived the killed import"
    reopened = Store(f"sqlite:///{db}")
    assert [a.id for a in reopened.recent("all", None, FeedQuery(limit=10))] == before
    assert reopened.stats()["articles"] == 50
    report = sync(reopened, [big], max_removal=1.0)  # replacing all 50 is the point here
    assert len(report.added) == 3000 and len(report.removed) == 50


def test_ids_and_entry_ids_survive_edits(tmp_path, app):
    site = copy_site(tmp_path / "ai")
    sync(get_store(app), [site])
    client = app.test_client()
    import feedparser
    before = {e.link: e.id for e in feedparser.parse(client.get("/feeds/all.atom?limit=200").data).entries}
    for path in (site / "_news").glob("2021-03-1*.md"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("title: ", "title: Changed ", 1), encoding="utf-8")
    sync(get_store(app), [site])
    after = feedparser.parse(client.get("/feeds/all.atom?limit=200").data)
    assert any(e.title.startswith("Changed ") for e in after.entries)
    assert {e.link: e.id for e in after.entries} == before


def test_record_parse_is_deterministic():
    path = CORPUS / "everyday-cc-ai/_news/2022-07-18-open-source-isnt-working-for-ai.md"
    if not path.exists():
        corpus_roots()
    data = path.read_bytes()
    a, b = parse_article(data, str(path), path.stem), parse_article(data, str(path), path.stem)
    assert json.dumps(a.record, sort_keys=True) == json.dumps(b.record, sort_keys=True)


def test_index_one_agrees_with_a_full_sync(tmp_path, app):
    from feeds.importer import index_one
    site = copy_site(tmp_path / "ai")
    store = get_store(app)
    sync(store, [site])
    seed = site / "_news" / "2022-07-18-open-source-isnt-working-for-ai.md"
    new = site / "_news" / "2030-05-05-a-new-record.md"
    new.write_text("---\ntitle: Open source AI models need new licences\nexcerpt: Facebook AI and others argue.\n"
                   "publishedDateTime: 2022-07-19T09:00:00Z\nwebUrl: https://example.org/new-licences\n"
                   "topics: [Facebook AI, AI, Totally New Topic]\nprovider: {name: Example, domain: example.org}\n---\n")
    dup = site / "_news" / "2030-05-06-same-url-again.md"
    dup.write_text(seed.read_text().replace("publishedDateTime: 2022-07-18T10:00:00Z", "publishedDateTime: 2022-07-20T10:00:00Z"))
    assert index_one(store, [site], new.stem).added.sample == [new.stem]
    assert index_one(store, [site], dup.stem).duplicates == [(dup.stem, seed.stem)]
    fresh = Store(f"sqlite:///{tmp_path}/fresh.db")
    full = sync(fresh, [site])
    assert sorted(full.duplicates) == sorted(sync(store, [site]).duplicates)
    public = lambda s: sorted(r.id for r in s.iter_index_rows() if r.published and not r.duplicate_of)  # noqa: E731
    assert public(store) == public(fresh)
    assert {t.slug for t in store.topics()} == {t.slug for t in fresh.topics()}
    row = store.article(new.stem)
    assert row.related and new.stem not in row.related
    assert all(store.article(i) is not None for i in row.related)
    assert new.stem in store.article(row.related[0]).related  # neighbours learn about the new article
    new.unlink()
    assert index_one(store, [site], new.stem).removed.sample == [new.stem]
    assert store.article(new.stem, public_only=False) is None
