"""Re-syncs that change nothing readers see keep the store's version (server caches stay
valid); the stamp diff skips unchanged files without parsing them and still follows edits;
jobs run in forked worker processes; the listing keeps one file per id; the YAML fast builder gives what
PyYAML's constructor gives."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import yaml

from feeds import yamlio
from feeds.importer import SAMPLE, Workers, _cgroup_headroom_mb, own_pss_mb, sync, worker_count
from feeds.store import changes
from feeds.recordfiles import list_records
from feeds.store import Store

from .conftest import copy_site


@pytest.fixture
def site_store(tmp_path: Path):
    site = copy_site(tmp_path / "ai")
    store = Store(f"sqlite:///{tmp_path}/i.db")
    first = sync(store, [site])
    yield site, store, first
    store.close()


def _record(site: Path) -> Path:
    return sorted((site / "_news").glob("*.md"))[0]


def test_unchanged_and_touched_resyncs_keep_the_version(site_store):
    site, store, first = site_store
    version = store.version()
    again = sync(store, [site])
    assert again.unchanged == len(first.added) and len(again.added) == len(again.updated) == len(again.removed) == 0
    assert store.version() == version
    target = _record(site)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))  # touched, same bytes
    touched = sync(store, [site])
    assert touched.unchanged == len(first.added) and len(touched.updated) == 0
    assert store.version() == version
    # the new stamp was stored: the next sync does not even read the file
    assert store.file_states()[str(target)].mtime_ns == target.stat().st_mtime_ns


def test_edit_with_new_stamp_is_picked_up_and_bumps_the_version(site_store):
    site, store, _ = site_store
    version = store.version()
    target = _record(site)
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("title: ", "title: EDITED-", 1) if "title: \"" not in text
                      else text.replace("title: \"", "title: \"EDITED ", 1), encoding="utf-8")
    report = sync(store, [site])
    assert report.updated.sample == [target.stem] and len(report.updated) == 1
    assert store.article(target.stem, public_only=False).record["title"].startswith("EDITED")
    assert store.version() != version


def test_new_bad_file_bumps_the_version_and_stays_reported(site_store):
    site, store, _ = site_store
    version = store.version()
    (site / "_news" / "2020-01-01-broken.md").write_bytes(b"---\ntitle: [unclosed\n---\n")
    report = sync(store, [site])
    assert [Path(e.path).name for e in report.skipped] == ["2020-01-01-broken.md"]
    assert store.version() != version
    version = store.version()
    again = sync(store, [site])  # unchanged bad file: reported again, nothing changed
    assert [Path(e.path).name for e in again.skipped] == ["2020-01-01-broken.md"]
    assert store.version() == version


def test_scan_reports_overrides_and_ignores_hidden_and_non_record_files(tmp_path):
    root = tmp_path / "site"
    for sub in ("_news", "_archive/_news"):
        (root / sub).mkdir(parents=True)
    (root / "_archive/_news/a.md").write_text("x")
    (root / "_news/a.md").write_text("x")
    (root / "_news/b.md").write_text("x")
    (root / "_news/.a.md.123.tmp").write_text("x")
    (root / "_news/notes.txt").write_text("x")
    (root / "_news/dir.md").mkdir()
    (root / "_news/.hidden.md").write_text("x")
    found = sorted(f[:3] for f in list_records([root]))
    assert found == [(str(root / "_archive/_news/a.md"), "a", 1), (str(root / "_news/a.md"), "a", 2),
                     (str(root / "_news/b.md"), "b", 2)]


def test_listing_keeps_the_strongest_file_per_id_and_reports_the_others(tmp_path):
    sites = [copy_site(tmp_path / "one"), tmp_path / "two"]
    record = _record(sites[0])
    archived, winner = sites[1] / "_archive/_news" / record.name, sites[1] / "_news" / record.name
    for copy in (archived, winner):
        copy.parent.mkdir(parents=True)
        copy.write_bytes(record.read_bytes())
    store = Store(f"sqlite:///{tmp_path}/o.db")
    report = sync(store, sites)
    # the first root's copy loses to both of the second root's; the archived one to its _news/ one
    assert sorted((o.path, o.winner) for o in report.overrides) == sorted(
        [(str(record), str(winner)), (str(archived), str(winner))])
    assert store.file_states()[str(winner)].article_id == record.stem
    assert len(report.added) == store.stats()["articles"] and str(record) not in store.file_states()
    store.close()


def test_report_counts_every_article_and_keeps_a_bounded_sample(site_store):
    _, store, first = site_store
    assert len(first.added) == first.added.count == store.stats()["articles"] > SAMPLE == len(first.added.sample)
    assert all(store.article(i, public_only=False) for i in first.added.sample)


def test_worker_pool_runs_jobs_in_forked_workers_in_order(tmp_path):
    site = copy_site(tmp_path / "ai")
    store = Store(f"sqlite:///{tmp_path}/w.db")
    with Workers(2) as workers:
        workers.start()
        assert workers.started
        pids = set(workers.map(_pid, range(8)))
        assert os.getpid() not in pids  # the jobs ran in the forked workers
    report = sync(store, [site])
    assert report.added and store.stats()["articles"] == len(report.added)
    store.close()
    assert 1 <= worker_count() <= 4


def test_memory_headroom_counts_a_limit_set_on_a_parent_cgroup(tmp_path):
    """A cgroup v2 limit on an ancestor (a systemd slice, a container) binds the leaf too."""
    for folder, limit, anon in (("", None, 0), ("/slice", 400 * 2**20, 100 * 2**20), ("/slice/job", "max", 30 * 2**20)):
        (tmp_path / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
        if limit is not None:
            (tmp_path / folder.lstrip("/") / "memory.max").write_text(f"{limit}\n")
        (tmp_path / folder.lstrip("/") / "memory.stat").write_text(f"anon {anon}\nfile 12345\n")
    assert _cgroup_headroom_mb(str(tmp_path), "/slice/job", "memory.max", "anon", True) == [300.0]
    # cgroup v1 reads the leaf alone, where the ancestors' limit is spelt out
    (tmp_path / "slice/job/memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")
    (tmp_path / "slice/job/memory.stat").write_text(f"hierarchical_memory_limit {256 * 2**20}\ntotal_rss {56 * 2**20}\n")
    assert _cgroup_headroom_mb(str(tmp_path), "/slice/job", "memory.limit_in_bytes", "total_rss", False) == [200.0]


def test_workers_are_sized_by_the_memory_budget():
    """Each phase forks only as many workers as fit beside this process in the budget; none
    fit (or fewer than the phase needs): the jobs run in this process."""
    own = own_pss_mb()
    assert own is not None and own > 0
    with Workers(2, budget_mb=own + 10) as tight:
        assert tight.fit(42) == 0
        assert set(tight.map(_pid, range(4), worker_mb=42)) == {os.getpid()} and not tight.started
    with Workers(2, budget_mb=own + 100) as roomy:
        assert roomy.fit(42) == 2
        assert set(roomy.map(_pid, range(4), worker_mb=42, min_size=3)) == {os.getpid()}
        assert os.getpid() not in set(roomy.map(_pid, range(4), worker_mb=42))
        assert roomy.started


def test_noted_ids_moved_to_the_database_settle_like_those_held_in_memory(tmp_path, monkeypatch):
    """Past NOTE_SPILL noted ids go to a temporary table; the feeds' change states come out the same."""
    site = copy_site(tmp_path / "ai")
    states = []
    for name, spill in (("held", changes.NOTE_SPILL), ("spilled", 5)):
        monkeypatch.setattr(changes, "NOTE_SPILL", spill)
        store = Store(f"sqlite:///{tmp_path}/{name}.db")
        sync(store, [site])
        identities = ["all", *(f"topics/{t.slug}" for t in store.topics())]
        states.append({i: s.version for i, s in store.feed_changes(identities).items()})  # times may read the clock
        store.close()
    assert states[0] == states[1] and len(states[0]) > 1


@pytest.mark.parametrize("renamed", ["providers", "topics"])
def test_a_rename_notes_its_articles_in_the_database_not_in_a_python_set(tmp_path, renamed):
    """A first import names every provider and topic, which notes every article: at 1M articles
    the ids held in memory took the import to 650 MB. They go straight to the temporary table."""
    site = copy_site(tmp_path / "ai")
    store = Store(f"sqlite:///{tmp_path}/index.db")
    sync(store, [site])
    with sqlite3.connect(tmp_path / "index.db") as db:
        if renamed == "providers":
            names = [r[0] for r in db.execute("SELECT DISTINCT provider_domain FROM articles WHERE provider_domain IS NOT NULL")]
            expected = {r[0] for r in db.execute("SELECT id FROM articles WHERE provider_domain IS NOT NULL")}
        else:
            names = [r[0] for r in db.execute("SELECT slug FROM topics")]
            expected = {r[0] for r in db.execute("SELECT DISTINCT article_id FROM article_topics")}
    assert len(expected) > 50 and names
    with store.write() as tx:
        (tx.note_providers_renamed if renamed == "providers" else tx.note_topics_renamed)(names)
        assert tx.noted_articles == set() and tx.noted_spilled
        noted = [i for chunk in tx._noted_chunks() for i in chunk]
    assert sorted(noted) == noted and set(noted) == expected and len(noted) == len(expected)
    store.close()


def _pid(_: int) -> int:
    """A picklable job for the worker pool: the pid that ran it."""
    return os.getpid()


FRONT_MATTERS = [
    "title: t\nn: 012\nx: 0o17\nh: 0x1f\nf: 1.5e3\nb: [true, False, NO, yes, ~, null, '']\nd: 2024-01-01\n",
    "nested:\n  - a: 1\n    b: {c: [1, 2, {d: e}]}\n  - - x\n    - y\nempty: {}\nlist: []\n",
    "s: !!str 12\ni: !!int '7'\n",
    "k: 1\nk: 2\n",          # a repeated key: PyYAML's constructor path reports it
    "1: a\n",               # a non-text key
    "t: !!binary aGk=\n",   # a tag beyond the core schema
    "f: !!float abc\n",
    "? [a]\n: b\n",
]


@pytest.mark.parametrize("front", FRONT_MATTERS)
def test_fast_builder_matches_pyyaml_constructor(front):
    def outcome(load):
        try:
            return "ok", load()
        except yamlio.YamlProblem as exc:
            return "problem", exc.reason, exc.line
        except yaml.YAMLError:
            return "problem"

    def slow():
        value = yaml.load(front, Loader=yamlio.CoreLoader)
        yamlio._check_depth(value)
        return value

    fast = outcome(lambda: yamlio.load_yaml(front))
    reference = outcome(slow)
    assert fast[0] == reference[0]
    if fast[0] == "ok":
        assert fast == reference and type(fast[1]) is type(reference[1])
    else:
        assert fast[1:2] and isinstance(fast[1], str)  # a reason to show


def test_deep_nesting_is_refused_by_the_fast_path_too():
    deep = "a: " + "[" * (yamlio.MAX_DEPTH + 1) + "]" * (yamlio.MAX_DEPTH + 1) + "\n"
    with pytest.raises(yamlio.YamlProblem, match="nested deeper"):
        yamlio.load_yaml(deep)
