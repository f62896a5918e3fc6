"""``topicfeed import`` stays lean: it opens the store without the Flask app, so neither the
import process nor the workers it forks hold Flask, Werkzeug or the views (issue 11: the whole
process tree of a 100k import within 150 MB). Run as a user would, in a fresh interpreter."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .test_golden import CONTENT

ROOT = Path(__file__).resolve().parent.parent

# imports CONTENT through the click command in this interpreter, then names the heavy modules loaded
PROBE = """
import sys
from server.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("LOADED", sorted(m for m in ("flask", "werkzeug", "jinja2", "lxml", "feedgen") if m in sys.modules))
"""


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_import_loads_no_flask(tmp_path):
    instance = tmp_path / "i"
    assert _probe("init", "--instance", str(instance)).returncode == 0
    done = _probe("import", "--instance", str(instance), str(CONTENT))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "added " in done.stdout and "LOADED []" in done.stdout, done.stdout
    again = _probe("import", "--instance", str(instance), str(CONTENT))  # an unchanged re-sync
    assert "added 0, updated 0" in again.stdout and "LOADED []" in again.stdout, again.stdout


def test_import_with_websub_base_url_builds_the_app(tmp_path):
    """With public_base_url set a WebSub hub may be due, so the app is built after the sync."""
    instance = tmp_path / "i"
    assert _probe("init", "--instance", str(instance)).returncode == 0
    with (instance / "config.toml").open("a") as fh:
        fh.write('\npublic_base_url = "https://feeds.example"\n')
    done = _probe("import", "--instance", str(instance), str(CONTENT))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "added " in done.stdout and "'flask'" in done.stdout, done.stdout


def test_reader_refuses_import_without_the_app(tmp_path):
    instance = tmp_path / "i"
    assert _probe("init", "--instance", str(instance)).returncode == 0
    with (instance / "config.toml").open("a") as fh:
        fh.write('\nrole = "reader"\nwriter_url = "https://writer.example"\npublic_base_url = "https://feeds.example"\n'
                 f'database_url = "sqlite:///{tmp_path / "writer.db"}"\n')
    refused = _probe("import", "--instance", str(instance), str(CONTENT))
    assert refused.returncode != 0 and "LOADED []" in refused.stdout
    assert "reader" in refused.stderr and "https://writer.example" in refused.stderr
