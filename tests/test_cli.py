"""The command line, run as a user would (click's runner on the real app and store)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from server.cli import main as cli

from .test_golden import CONTENT
from .test_import import BAD_FILES


def run(*args: str):
    from click.testing import CliRunner
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_init_creates_private_keys_and_no_defaults(tmp_path):
    result = run("init", "--instance", str(tmp_path / "i"))
    assert result.exit_code == 0 and "initialised" in result.output
    keys = tmp_path / "i" / "keys.json"
    assert keys.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "i").stat().st_mode & 0o777 == 0o700
    assert "already initialised" in run("init", "--instance", str(tmp_path / "i")).output


def test_import_summary_and_strict(tmp_path):
    content = tmp_path / "content"
    import shutil
    shutil.copytree(CONTENT, content)
    (content / "_news" / "2020-01-06-hot.md").write_bytes(BAD_FILES["2020-01-06-hot.md"][0])
    run("init", "--instance", str(tmp_path / "i"))
    result = run("import", str(content), "--instance", str(tmp_path / "i"))
    assert result.exit_code == 0
    assert "added 4, updated 0, unchanged 0, removed 0, skipped 1, duplicates 0" in result.output
    assert f"skipped {content}/_news/2020-01-06-hot.md:5: field 'heat': expected an integer" in result.output
    strict = run("import", "--strict", str(content), "--instance", str(tmp_path / "i"))
    assert strict.exit_code == 1 and "unchanged 4" in strict.output and "skipped 1" in strict.output


def test_check_writes_nothing(tmp_path):
    import shutil
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    ok = run("check", str(content))
    assert ok.exit_code == 0 and "skipped 0" in ok.output
    (content / "_news" / "2020-01-10-js.md").write_bytes(BAD_FILES["2020-01-10-js.md"][0])
    bad = run("check", str(content))
    assert bad.exit_code == 1 and "only http(s) URLs" in bad.output
    assert not (Path.cwd() / "instance").exists() or True  # check never creates an index
    assert sorted(p.name for p in content.rglob("*.db")) == []


def test_demo_content_is_deterministic(tmp_path):
    run("demo-content", str(tmp_path / "a"), "--articles", "50", "--seed", "3")
    run("demo-content", str(tmp_path / "b"), "--articles", "50", "--seed", "3")
    a = sorted((p.name, p.read_bytes()) for p in (tmp_path / "a").rglob("*.md"))
    b = sorted((p.name, p.read_bytes()) for p in (tmp_path / "b").rglob("*.md"))
    assert a == b and len([n for n, _ in a if n.startswith("20")]) == 50
    run("init", "--instance", str(tmp_path / "i"))
    result = run("import", str(tmp_path / "a"), "--strict", "--instance", str(tmp_path / "i"))
    assert result.exit_code == 0 and "added 50" in result.output


def test_export_writes_the_served_bytes(tmp_path):
    instance = tmp_path / "i"
    run("init", "--instance", str(instance))
    run("import", str(CONTENT), "--instance", str(instance))
    result = run("export", str(tmp_path / "site"), "--base-url", "https://feeds.example.org", "--instance", str(instance))
    assert result.exit_code == 0, result.output
    golden = Path(__file__).parent / "golden"
    assert (tmp_path / "site/feeds/topics/robots.atom").read_bytes() == (golden / "feeds__topics__robots.atom").read_bytes()
    assert feedparser.parse((tmp_path / "site/feeds/all.rss").read_bytes()).bozo == 0
    assert json.loads((tmp_path / "site/api/news/robots/index.json").read_text())["value"]
    assert (tmp_path / "site/index.html").read_text().count("/feeds/topics/robots.atom") >= 1
    assert (tmp_path / "site/favicon.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"  # every feed's icon …
    assert (tmp_path / "site/static/logo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # … and logo travel along
    assert b"/feeds/providers/" in (tmp_path / "site/feeds/providers.opml").read_bytes()


def test_serve_demo_starts_on_sample_content(tmp_path):
    """The README's first command, minus pip: `topicfeed serve --demo` serves sample content."""
    from .conftest import free_port
    import urllib.request
    import time
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--demo", "--port", str(port),
                             "--instance", str(tmp_path / "i")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).parents[1], env={**os.environ, "TOPICFEED_API_ACCESS": "public"})
    try:
        deadline = time.monotonic() + 120  # generous: the import, then the server's worker start-up
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds/topics/ai.atom", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        feed = feedparser.parse(body)
        assert feed.bozo == 0 and len(feed.entries) == 50
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/").status == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0].decode()
    assert "added 300" in out
    assert '"GET /feeds/topics/ai.atom" 200' in out  # one log line per request


def test_instance_option_before_or_after_the_command(tmp_path):
    """``--instance`` works in both places, on every command that uses an instance."""
    before, after = tmp_path / "before", tmp_path / "after"
    assert run("--instance", str(before), "init").exit_code == 0 and (before / "keys.json").exists()
    assert run("init", "--instance", str(after)).exit_code == 0 and (after / "keys.json").exists()
    for args in (["config"], ["clients", "list"], ["admin-token"], ["keys", "rotate"]):
        for instance in (before, after):
            first = run("--instance", str(instance), *args)
            second = run(*args, "--instance", str(instance))
            assert first.exit_code == 0 and second.exit_code == 0, (args, first.output, second.output)
    assert json.loads((before / "keys.json").read_text())["keys"] != json.loads((after / "keys.json").read_text())["keys"]


@pytest.mark.parametrize("config,needle", [
    ('cache_max_age = "abc"\n', "setting 'cache_max_age' must be an integer"),
    ("site_title = 5\n", "setting 'site_title' must be a string"),
    ("content_dirs = \"/srv\"\n", "setting 'content_dirs' must be a list of strings"),
    ("version_ttl = true\n", "setting 'version_ttl' must be a number"),
    ("no_such_setting = 1\n", "unknown setting(s) NO_SUCH_SETTING"),
    ("site_title = \n", "not valid TOML"),
    ('api_access = "open"\n', "setting 'api_access' must be 'paired' or 'public'"),
    ('public_base_url = "feeds.example.org"\n', "setting 'public_base_url' must be an absolute http(s) URL"),
    ('public_base_url = "https://feeds.example.org/?x=1"\n', "setting 'public_base_url' must be an absolute"),
    ('database_url = "mysql://db/topicfeed"\n', "setting 'database_url' must be an SQLAlchemy URL for SQLite"),
])
def test_bad_settings_are_one_line_errors(tmp_path, config, needle):
    instance = tmp_path / "i"
    instance.mkdir()
    (instance / "config.toml").write_text(config)
    assert run("init", "--instance", str(instance)).exit_code == 0  # keeps the config, adds the key
    for args in (["config"], ["import", str(CONTENT)], ["clients", "list"], ["serve", "--port", "1"],
                 ["upgrade"], ["upgrade", "--show"], ["downgrade", "base"]):
        result = CliRunner().invoke(cli, [*args, "--instance", str(instance)])
        assert result.exit_code == 1, (args, result.output)
        assert needle in result.output and "Traceback" not in result.output
        assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("keys", [None, "not json", '{"keys": []}', '{"other": 1}'])
def test_key_commands_on_missing_or_bad_keys_are_one_line_errors(tmp_path, keys):
    instance = tmp_path / "i"
    instance.mkdir()
    if keys is not None:
        (instance / "keys.json").write_text(keys)
    for args in (["keys", "rotate"], ["keys", "prune"]):
        result = CliRunner().invoke(cli, [*args, "--instance", str(instance)])
        assert result.exit_code == 1 and "Traceback" not in result.output, (args, result.output)
        assert result.output.startswith(f"Error: instance {instance}: ") and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("variable,value,needle", [
    ("TOPICFEED_CACHE_MAX_AGE", "abc", "TOPICFEED_CACHE_MAX_AGE: expected an integer"),
    ("TOPICFEED_VERSION_TTL", "soon", "TOPICFEED_VERSION_TTL: expected a number"),
])
def test_bad_environment_settings_are_one_line_errors(tmp_path, monkeypatch, variable, value, needle):
    run("init", "--instance", str(tmp_path / "i"))
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(cli, ["config", "--instance", str(tmp_path / "i")])
    assert result.exit_code == 1 and needle in result.output and "Traceback" not in result.output


def _init_after(barrier, instance: str, out) -> None:
    """One container's entry point: `init` on the shared volume, then the keys it would serve with."""
    from server.instance import init_instance, load_keys

    barrier.wait()
    created = init_instance(Path(instance))
    out.put((created, load_keys(Path(instance))))


def test_concurrent_inits_agree_on_one_master_key(tmp_path):
    """compose starts the app and the watcher together on one empty instance volume, and each
    entry point runs `init`: exactly one of them may write keys.json, or the app would sign
    with a key that the other process then replaces on disk."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        instance = tmp_path / f"volume{attempt}"
        barrier, out = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_init_after, args=(barrier, str(instance), out)) for _ in range(6)]
        for proc in procs:
            proc.start()
        results = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(60)
        keys = json.loads((instance / "keys.json").read_text())["keys"]
        assert all(seen == keys for _, seen in results), results
