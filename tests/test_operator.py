"""Operator mistakes are caught with one clear line and change nothing (issue 9)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from server.cli import main as cli

from .conftest import free_port
from .test_golden import CONTENT

REPO = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, needle: str) -> None:
    assert result.exit_code != 0, result.output
    assert needle in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def imported(tmp_path: Path) -> tuple[Path, Path]:
    content = tmp_path / "site"
    shutil.copytree(CONTENT, content)
    instance = tmp_path / "i"
    assert run("init", "--instance", str(instance)).exit_code == 0
    assert run("import", str(content), "--instance", str(instance)).exit_code == 0
    return instance, content


def articles(instance: Path) -> int:
    """How many articles the instance's index holds (read directly)."""
    import sqlite3
    with sqlite3.connect(instance / "topicfeed.db") as db:
        return db.execute("SELECT count(*) FROM articles").fetchone()[0]


def test_no_command_but_init_creates_an_instance(tmp_path):
    missing = tmp_path / "nowhere"
    for args in (["import", str(CONTENT)], ["config"], ["clients", "list"], ["admin-token"], ["serve", "--port", "1"],
                 ["upgrade"], ["export", str(tmp_path / "out"), "--base-url", "http://x"]):
        result = run(*args, "--instance", str(missing))
        one_line_error(result, f"no instance at {missing}: run `topicfeed init")
    assert not missing.exists()


def test_serve_in_the_wrong_folder_leaves_nothing_behind(tmp_path):
    """A real `serve` process (no PROMETHEUS_MULTIPROC_DIR yet) in a folder without ./instance."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "TOPICFEED_INSTANCE")} | {"PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "server", "serve", "--port", "1"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no instance at" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_empty_or_missing_roots_are_refused(tmp_path):
    instance, content = imported(tmp_path)
    before = articles(instance)
    empty = tmp_path / "empty"
    empty.mkdir()
    for strict in ([], ["--strict"]):
        one_line_error(run("import", *strict, str(empty), "--instance", str(instance)), "no record files")
    one_line_error(run("import", str(tmp_path), "--instance", str(instance)), "is this the content root")  # one level too high
    missing = run("import", str(tmp_path / "gone"), "--instance", str(instance))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (instance / "config.toml").write_text(f'content_dirs = ["{tmp_path / "gone"}"]\n')
    one_line_error(run("import", "--instance", str(instance)), "content directory not found")
    assert articles(instance) == before


def test_mass_removal_needs_a_flag(tmp_path):
    instance, content = imported(tmp_path)
    total = articles(instance)
    kept = sorted((content / "_news").glob("*.md"))[:1]
    for path in (content / "_news").glob("*.md"):
        if path not in kept:
            path.unlink()
    refused = run("import", str(content), "--instance", str(instance))
    one_line_error(refused, f"would remove {total - 1} of {total} indexed articles")
    assert "--allow-mass-removal" in refused.output and articles(instance) == total
    check = run("check", str(content), "--instance", str(instance))
    assert check.exit_code == 1 and f"removed {total - 1}" in check.output and "would be refused" in check.output
    allowed = run("import", "--allow-mass-removal", str(content), "--instance", str(instance))
    assert allowed.exit_code == 0 and f"removed {total - 1}" in allowed.output and articles(instance) == 1


def test_check_says_what_import_would_do(tmp_path):
    instance, content = imported(tmp_path)
    first = sorted((content / "_news").glob("*.md"))[0]
    first.write_text(first.read_text().replace("title: ", "title: Edited ", 1))
    result = run("check", str(content), "--instance", str(instance))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("import would: added 0, updated 1,") and "removed 0" in result.output
    again = run("check", str(content), "--instance", str(instance))
    assert "updated 1" in again.output  # check changed nothing
    fresh = run("check", str(content), "--instance", str(tmp_path / "none"))
    assert "compared with an empty index" in fresh.output and not (tmp_path / "none").exists()
    one_line_error(run("check", str(tmp_path), "--instance", str(instance)), "is this the content root")


def test_busy_port_is_one_line_and_never_claims_to_serve(tmp_path):
    instance, _ = imported(tmp_path)
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = subprocess.run([sys.executable, "-m", "server", "serve", "--port", str(port), "--instance", str(instance)],
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"Error: cannot listen on 127.0.0.1:{port}")
    assert "serving" not in proc.stderr and "serving" not in proc.stdout


def test_bad_new_settings_are_named(tmp_path):
    instance = tmp_path / "i"
    assert run("init", "--instance", str(instance)).exit_code == 0
    for line, needle in [("import_max_removal = 2\n", "setting 'import_max_removal' must be from 0 to 1"),
                         ("write_lock_timeout = \"5s\"\n", "setting 'write_lock_timeout' must be a number"),
                         ("trusted_hosts = \"x\"\n", "setting 'trusted_hosts' must be a list of strings"),
                         ("connection_limit = 0\n", "setting 'connection_limit' must be from 1 up")]:
        (instance / "config.toml").write_text(line)
        one_line_error(run("config", "--instance", str(instance)), needle)


def test_out_of_range_and_non_finite_numbers_are_named(tmp_path, monkeypatch):
    """nan compares false with any bound, so it once slipped past the range check and disabled
    the mass-removal guard; a negative max-age was served as `max-age=-1`."""
    instance = tmp_path / "i"
    assert run("init", "--instance", str(instance)).exit_code == 0
    for line, needle in [("import_max_removal = nan\n", "setting 'import_max_removal' must be from 0 to 1, got nan"),
                         ("write_lock_timeout = inf\n", "setting 'write_lock_timeout' must be from 0.01 up, got inf"),
                         ("cache_max_age = -1\n", "setting 'cache_max_age' must be from 0 up"),
                         ("api_page_size = 0\n", "setting 'api_page_size' must be from 1 to 100")]:
        (instance / "config.toml").write_text(line)
        one_line_error(run("config", "--instance", str(instance)), needle)
    (instance / "config.toml").write_text("")
    monkeypatch.setenv("TOPICFEED_IMPORT_MAX_REMOVAL", "nan")
    one_line_error(run("config", "--instance", str(instance)), "setting 'import_max_removal' must be from 0 to 1")
    monkeypatch.delenv("TOPICFEED_IMPORT_MAX_REMOVAL")
    monkeypatch.setenv("TOPICFEED_TRUSTED_HOSTS", "a.example,b.example")  # comma-separated, like metrics_allow
    assert "trusted_hosts = ['a.example', 'b.example']" in run("config", "--instance", str(instance)).output


def test_serve_reconciles_files_and_index_at_start(tmp_path):
    instance, content = imported(tmp_path)
    (instance / "config.toml").write_text(f'content_dirs = ["{content}"]\n')
    first = sorted((content / "_news").glob("*.md"))[0]
    first.unlink()  # e.g. a crash between a file change and its index write, or an edit while stopped
    from .conftest import LiveServer
    server = LiveServer(instance)
    try:
        assert "reconciled with 1 content root(s): added 0, updated 0" in server.access_log()
        assert "removed 1" in server.access_log()
    finally:
        server.stop()
