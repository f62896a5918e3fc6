"""The shared vectors come from the real Python code, and the JavaScript side agrees with them."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.vectors import generate

REPO = Path(__file__).resolve().parents[1]


def test_committed_vectors_match_the_python_implementation():
    assert json.loads((generate.OUT / "secured.json").read_text(encoding="utf-8")) == json.loads(
        json.dumps(generate.secured_vectors(), ensure_ascii=False))
    assert json.loads((generate.OUT / "urls.json").read_text(encoding="utf-8")) == generate.url_vectors()


def test_javascript_suite_passes():
    node = shutil.which("node")
    assert node, "Node.js is required for the extension's tests (.ci/run installs it)"
    proc = subprocess.run([node, "--test", "extension/test/"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout
