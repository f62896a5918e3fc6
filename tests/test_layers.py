"""The import contracts of ARCHITECTURE.md, checked on the source: ``feeds`` never imports
``server`` (nor Flask); only ``feeds/store/`` talks to the database (SQLAlchemy, Alembic, an
engine, SQL text); blueprints never import their app package; URLs come from server/links.py."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STORE = REPO / "feeds" / "store"
DATABASE_MODULES = ("sqlalchemy", "alembic", "sqlite3", "psycopg")
SQL = re.compile(r"^\s*(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|"
                 r"ALTER\s+TABLE|DROP\s+TABLE|PRAGMA)\b", re.IGNORECASE | re.DOTALL)


def modules(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (REPO / f).rglob("*.py"))


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_feeds_never_imports_server_or_the_web_framework():
    offenders = [str(p.relative_to(REPO)) for p in modules("feeds")
                 if any(n.split(".")[0] in ("server", "flask", "werkzeug") for n in imported(ast.parse(p.read_text())))]
    assert offenders == []


def test_only_the_store_touches_the_database():
    offenders = []
    for path in modules("feeds", "server", "bench", "tests"):
        if STORE in path.parents:
            continue
        tree = ast.parse(path.read_text())
        rel = str(path.relative_to(REPO))
        offenders += [f"{rel}: imports {n}" for n in sorted(imported(tree)) if n.split(".")[0] in DATABASE_MODULES
                      and not rel.startswith("tests/")]  # tests may inspect a database directly
        offenders += [f"{rel}:{n.lineno}: uses .engine" for n in ast.walk(tree)
                      if isinstance(n, ast.Attribute) and n.attr in ("engine", "_engine")]
        if not rel.startswith("tests/"):
            offenders += [f"{rel}:{n.lineno}: SQL text" for n in ast.walk(tree)
                          if isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL.match(n.value)]
    assert offenders == []


def test_the_rule_sees_violations(tmp_path):
    """The checks above would catch an import, an engine and a SQL string."""
    tree = ast.parse("import sqlalchemy\nfrom server.api import x\nstore.engine.connect()\nq = 'SELECT id FROM articles'\n")
    assert {"sqlalchemy", "server.api"} <= imported(tree)
    assert any(isinstance(n, ast.Attribute) and n.attr == "engine" for n in ast.walk(tree))
    assert any(isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL.match(n.value) for n in ast.walk(tree))


SERVER_SUBMODULES = {p.stem for p in (REPO / "server").glob("*.py")}


def test_blueprints_do_not_import_their_app_package():
    """Views get the store, keys and cache from server.context, never from the package that
    registers them (which would make the import order matter); only the CLI builds an app."""
    offenders = []
    for path in modules("server"):
        if path.name in ("__init__.py", "cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module:
                offenders += [f"{path.name}: from . import {a.name}" for a in node.names if a.name not in SERVER_SUBMODULES]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "server":
                offenders.append(f"{path.name}: from server import …")
    assert offenders == []


def test_no_server_module_formats_a_route_path():
    """URLs come from server/links.py: nobody else builds ``f"/feeds/…"`` or ``f"{base}/api/…"``."""
    offenders = []
    for path in modules("server"):
        if path.name == "links.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.JoinedStr):
                continue
            parts = list(node.values)
            if parts and isinstance(parts[0], ast.FormattedValue):
                parts = parts[1:]
            first = parts[0].value if parts and isinstance(parts[0], ast.Constant) else ""
            if isinstance(first, str) and first.startswith(("/feeds", "/api")):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_only_links_calls_url_for():
    """Flask's ``url_for`` is wrapped once, in server/links.py, so every emitted URL has one home."""
    offenders = []
    for path in modules("server", "feeds"):
        if path.name == "links.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name == "url_for":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
