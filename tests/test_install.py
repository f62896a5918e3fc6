"""The README's quick start on Debian's own Python: a venv made with /usr/bin/python3 (pip refuses
to install into the system interpreter, PEP 668), a normal (non-editable) install of the project
from PyPI dependencies only, `topicfeed --version`, and `serve --demo` answering /healthz.

The install is made from a git clone, as a self-hoster gets it, of this checkout's state (its
uncommitted changes to tracked files included, through ``git stash create``): a file the code
needs but git does not track fails here, not on the first user's machine."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from .conftest import REPO, free_port

DEBIAN_PYTHON = Path("/usr/bin/python3")  # present on every machine of this project (issue 13)


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=True).stdout.strip()


def clone_of_this_checkout(dest: Path) -> Path:
    """A ``git clone`` of this checkout at its current state: HEAD plus the changes to tracked
    (or staged) files, as the commit ``git stash create`` makes without touching any ref or the
    working tree. ``--shared`` lets the clone read that unreferenced commit from this
    repository's objects. Untracked files are left out, as a push would leave them out."""
    state = git("stash", "create") or git("rev-parse", "HEAD")
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(REPO), str(dest)], check=True,
                    capture_output=True, timeout=300)
    git("checkout", "--quiet", "--detach", state, cwd=dest)
    return dest


def test_quick_start_in_a_venv_of_debians_python(tmp_path):
    assert DEBIAN_PYTHON.exists(), "Debian's python3 is missing (apt-get install python3 python3-venv)"
    source = clone_of_this_checkout(tmp_path / "src")  # pip builds in the source tree: never this checkout
    assert git("ls-files", "server/cli.py", cwd=source) == "server/cli.py" and not (source / "instance").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}  # nothing of this checkout
    venv = tmp_path / "venv"
    subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)], capture_output=True, text=True,
                             timeout=900, env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    topicfeed = venv / "bin" / "topicfeed"
    version = subprocess.run([str(topicfeed), "--version"], capture_output=True, text=True, timeout=120, check=True,
                             env=env, cwd=tmp_path)
    assert version.stdout.startswith("topicfeed, version ")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import server; print(server.__file__)"],
                           capture_output=True, text=True, timeout=60, check=True, env=env, cwd=tmp_path).stdout
    assert where.startswith(str(venv))  # the installed copy, not this checkout

    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(topicfeed), "serve", "--demo", "--port", str(port)], cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        assert health["status"] == "ok" and health["articles"] == 300 and health["last_import"]["result"] == "ok"
        assert (tmp_path / "instance" / "keys.json").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
    assert code == 0  # SIGTERM is a clean stop
