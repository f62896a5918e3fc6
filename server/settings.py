"""Settings declared once as data: name, default, help. Sources, later wins: defaults,
``<instance>/config.toml``, ``TOPICFEED_<NAME>`` environment variables, test overrides."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS = [
    Setting("DATABASE_URL", "", "SQLAlchemy URL of the index; empty = SQLite file topicfeed.db in the instance folder"),
    Setting("AUTO_UPGRADE", True, "migrate the index to this version's schema at start (locked); false: `topicfeed upgrade` does it"),
    Setting("CONTENT_DIRS", [], "content roots in the everyday-cc layout; later ones override earlier ones"),
    Setting("PUBLIC_BASE_URL", "", "absolute URL the service is reached at (feeds' self links); empty = from the request"),
    Setting("SITE_TITLE", "topicfeed", "title of the HTML index and the OPML list"),
    Setting("CACHE_MAX_AGE", 300, "seconds readers and proxies may reuse a feed (Cache-Control max-age)"),
    Setting("RENDER_CACHE_MB", 32, "megabytes of rendered documents (bodies and their gzip copies) kept per server process"),
    Setting("VERSION_TTL", 1.0, "seconds a process trusts its last reading of the store version"),
    Setting("API_ACCESS", "paired", "'paired': every /api request needs a client token; 'public': anyone may read"),
    Setting("API_PAGE_SIZE", 20, "items per page of paged API collections"),
    Setting("MAX_BODY_BYTES", 256 * 1024, "largest accepted request body for curator writes"),
]
DEFAULTS = {s.name: s.default for s in SETTINGS}


def _from_env(name: str, default: Any) -> Any:
    raw = os.environ.get(f"TOPICFEED_{name}")
    if raw is None:
        return None
    if isinstance(default, list):
        return [p for p in raw.split(os.pathsep) if p]
    try:
        if isinstance(default, bool):
            return {"1": True, "true": True, "yes": True, "on": True,
                    "0": False, "false": False, "no": False, "off": False}[raw.strip().lower()]
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except (KeyError, ValueError):
        raise ValueError(f"environment variable TOPICFEED_{name}: expected {_kind(default)}, got {raw[:40]!r}") from None
    return raw


def _kind(default: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", list: "a list of strings",
            str: "a string"}[type(default)]


def _check_type(name: str, value: Any, source: str) -> None:
    """A setting's value has its default's type (an int passes for a float)."""
    default = DEFAULTS[name]
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        ok = isinstance(value, type(default)) and (not isinstance(value, list) or all(isinstance(v, str) for v in value))
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        raise ValueError(f"{source}: setting '{name.lower()}' must be {_kind(default)}, got {value!r:.60}")


def load_settings(instance: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve every setting. Raises ``ValueError`` with one line naming the file or variable and
    the setting for invalid TOML, an unknown setting or a value of the wrong type."""
    values = dict(DEFAULTS)
    config_file = instance / "config.toml"
    if config_file.exists():
        try:
            with config_file.open("rb") as fh:
                data = {k.upper(): v for k, v in tomllib.load(fh).items()}
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{config_file}: not valid TOML: {exc}") from None
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"{config_file}: unknown setting(s) {', '.join(unknown)} "
                             "(`topicfeed config` lists them all)")
        for name, value in data.items():
            _check_type(name, value, str(config_file))
        values.update(data)
    for name, default in DEFAULTS.items():
        env = _from_env(name, default)
        if env is not None:
            values[name] = env
    values.update(overrides or {})
    if values["API_ACCESS"] not in ("paired", "public"):
        raise ValueError(f"setting 'api_access' must be 'paired' or 'public', got {values['API_ACCESS']!r:.40}")
    return values
