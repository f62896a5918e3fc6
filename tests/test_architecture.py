"""The import contracts of ARCHITECTURE.md, checked on the source (AST), so a violation fails CI."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STORE = REPO / "feeds" / "store"


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, level) of every import statement in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", [a.name for a in node.names], node.level))
    return found


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", modules("feeds"), ids=rel)
def test_feeds_never_imports_server_or_flask(path):
    for module, _, level in imports(path):
        top = module.split(".")[0]
        assert not (level == 0 and top in ("server", "flask", "werkzeug")), f"{rel(path)} imports {module}"


@pytest.mark.parametrize("path", modules("feeds") + modules("server") + modules("bench"), ids=rel)
def test_only_the_store_talks_to_the_database(path):
    if STORE in path.parents or path == STORE.with_suffix(".py"):
        return
    source = path.read_text(encoding="utf-8")
    for module, _, _ in imports(path):
        assert not module.startswith("sqlalchemy"), f"{rel(path)} imports {module}: SQL belongs in feeds/store"
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "engine":
            pytest.fail(f"{rel(path)}:{node.lineno} uses .engine: ask the store instead")


SERVER_SUBMODULES = {p.stem for p in (REPO / "server").glob("*.py")}


@pytest.mark.parametrize("path", [p for p in modules("server") if p.name not in ("__init__.py", "cli.py", "__main__.py")],
                         ids=rel)
def test_blueprints_do_not_import_their_app_package(path):
    """Views get the store, keys and cache from server.context, never from the package that
    registers them (which would make the import order matter)."""
    for module, names, level in imports(path):
        if level == 1 and module == "":
            assert set(names) <= SERVER_SUBMODULES, f"{rel(path)} imports {names} from the app package"
        assert not (level == 0 and module == "server"), f"{rel(path)} imports the app package"


def test_no_view_formats_urls():
    """URLs come from server/links.py: no other server module builds one in an f-string
    (``f"/feeds/…"`` or ``f"{base}/api/…"``)."""
    for path in modules("server"):
        if path.name == "links.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            parts = list(node.values)
            if parts and isinstance(parts[0], ast.FormattedValue):
                parts = parts[1:]
            first = parts[0].value if parts and isinstance(parts[0], ast.Constant) else ""
            assert not (isinstance(first, str) and first.startswith(("/feeds", "/api"))), \
                f"{rel(path)}:{node.lineno} formats a URL: use server.links"


def test_only_links_calls_url_for():
    """Flask's ``url_for`` is wrapped once, in server/links.py, so every emitted URL has one home."""
    for path in modules("server") + modules("feeds"):
        if path.name == "links.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            assert name != "url_for", f"{rel(path)}:{node.lineno} calls url_for: use server.links"
