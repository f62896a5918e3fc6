"""Store readiness of the extension: Firefox's linter (web-ext, installed by .ci/run with npm),
the package `npm run package` builds, icons, permissions, no HTML sinks, no copied logic."""
from __future__ import annotations

import json
import shlex
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[1] / "extension"
WEB_EXT = EXTENSION / "node_modules" / ".bin" / "web-ext"


def npm_script(name: str) -> list[str]:
    """The command line of an npm script in extension/package.json, with web-ext from node_modules."""
    assert WEB_EXT.exists(), "run `npm ci` in extension/ (.ci/run does) to install web-ext"
    argv = shlex.split(json.loads((EXTENSION / "package.json").read_text())["scripts"][name])
    assert argv[0] == "web-ext"
    return [str(WEB_EXT), *argv[1:]]


def test_web_ext_lint_has_no_errors():
    proc = subprocess.run([*npm_script("lint"), "--output", "json"], cwd=EXTENSION, capture_output=True, text=True,
                          timeout=300)
    report = json.loads(proc.stdout)
    assert report["summary"]["errors"] == 0, report["errors"]
    # The one expected warning: Firefox ignores background.service_worker (it uses background.scripts).
    assert {w["code"] for w in report["warnings"]} <= {"BACKGROUND_SERVICE_WORKER_IGNORED"}, report["warnings"]


def test_package_holds_the_extension_and_nothing_else(tmp_path):
    argv = npm_script("package")
    assert argv[argv.index("--artifacts-dir") + 1] == "../dist", "the README says the zip lands in the repository's dist/"
    argv[argv.index("--artifacts-dir") + 1] = str(tmp_path)
    subprocess.run(argv, cwd=EXTENSION, check=True, capture_output=True, timeout=300)
    [built] = tmp_path.glob("*.zip")
    names = zipfile.ZipFile(built).namelist()
    assert "manifest.json" in names and "lib/elements.js" in names and "icons/icon-128.png" in names
    for name in names:
        assert not name.startswith(("test", "tools", "node_modules")) and not name.endswith((".md", ".svg", ".py")), name
        assert name.endswith("/") or (EXTENSION / name).is_file(), name


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_icons_at_every_size_the_stores_and_browsers_use():
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert set(manifest["icons"]) == {"16", "32", "48", "128"}
    for size, path in {**manifest["icons"], **manifest["action"]["default_icon"]}.items():
        assert png_size(EXTENSION / path) == (int(size), int(size)), path
    assert (EXTENSION / "icons" / "icon.svg").exists() and (EXTENSION / "tools" / "render_icons.py").exists()


def test_manifest_is_least_privilege():
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert set(manifest["permissions"]) == {"storage", "activeTab", "scripting"}
    assert "tabs" not in manifest["permissions"] and "webNavigation" not in manifest["permissions"]
    assert "<all_urls>" not in json.dumps(manifest) and "web_accessible_resources" not in manifest
    assert manifest["host_permissions"] == ["*://*.infoworld.com/*", "http://127.0.0.1/*", "http://localhost/*"]
    assert "unsafe" not in manifest["content_security_policy"]["extension_pages"]
    assert manifest["background"]["service_worker"] == manifest["background"]["scripts"][0]
    assert manifest["browser_specific_settings"]["gecko"]["data_collection_permissions"]
    # content scripts cannot be modules: the shared classic script comes first
    assert manifest["content_scripts"][0]["js"] == ["lib/elements.js", "content.js"]


def test_no_html_injection_sinks_in_extension_code():
    for path in EXTENSION.glob("**/*.js"):
        if "node_modules" in path.parts:
            continue
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{path.name} uses {sink}"
    assert shutil.which("node")


def test_http_links_rule_and_element_creation_live_in_one_module():
    for path in EXTENSION.glob("*.js"):
        text = path.read_text()
        assert "function safeHttpUrl" not in text and "function el(" not in text, path.name
        assert "createElement" not in text, f"{path.name} creates elements itself instead of using lib/elements.js"


def test_duplicate_code_scan_finds_nothing():
    duplicates = shutil.which("duplicates")
    if not duplicates:
        pytest.skip("the `duplicates` scanner is not on PATH")
    out = subprocess.run([duplicates, "--repo", str(EXTENSION)], capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("no duplicates"), out
