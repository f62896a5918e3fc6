"""The README's quick start on Debian's own Python: a venv made with /usr/bin/python3 (pip refuses
to install into the system interpreter, PEP 668), a normal (non-editable) install of the project
from PyPI dependencies only, `topicfeed --version`, and `serve --demo` answering /healthz."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from .conftest import REPO, free_port

DEBIAN_PYTHON = Path("/usr/bin/python3")  # present on every machine of this project (issue 13)


def test_quick_start_in_a_venv_of_debians_python(tmp_path):
    assert DEBIAN_PYTHON.exists(), "Debian's python3 is missing (apt-get install python3 python3-venv)"
    source = tmp_path / "src"  # pip builds in the source tree: build a copy, keep the checkout clean
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("feeds", "server"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
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
