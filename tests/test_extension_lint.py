"""Firefox's linter (web-ext, installed by .ci/run with npm) finds no errors in the extension."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

EXTENSION = Path(__file__).resolve().parents[1] / "extension"


def test_web_ext_lint_has_no_errors():
    web_ext = EXTENSION / "node_modules" / ".bin" / "web-ext"
    assert web_ext.exists(), "run `npm ci` in extension/ (.ci/run does) to install web-ext"
    proc = subprocess.run([str(web_ext), "lint", "--source-dir", ".", "--output", "json", "--ignore-files",
                           "node_modules/**", "test/**", "package.json", "package-lock.json"],
                          cwd=EXTENSION, capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    assert report["summary"]["errors"] == 0, report["errors"]
    # The one expected warning: Firefox ignores background.service_worker (it uses background.scripts).
    assert {w["code"] for w in report["warnings"]} <= {"BACKGROUND_SERVICE_WORKER_IGNORED"}, report["warnings"]


def test_manifest_is_least_privilege():
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert set(manifest["permissions"]) == {"storage", "activeTab", "scripting"}
    assert "tabs" not in manifest["permissions"] and "<all_urls>" not in json.dumps(manifest)
    assert manifest["host_permissions"] == ["*://*.infoworld.com/*", "http://127.0.0.1/*", "http://localhost/*"]
    assert "unsafe" not in manifest["content_security_policy"]["extension_pages"]
    assert manifest["background"]["service_worker"] == manifest["background"]["scripts"][0]
    assert manifest["browser_specific_settings"]["gecko"]["data_collection_permissions"]


def test_no_html_injection_sinks_in_extension_code():
    for path in EXTENSION.glob("**/*.js"):
        if "node_modules" in path.parts:
            continue
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{path.name} uses {sink}"
    assert shutil.which("node")
