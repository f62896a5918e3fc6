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
    Setting("RENDER_CACHE_ENTRIES", 256, "rendered feeds kept in memory per process"),
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
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_settings(instance: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve every setting; unknown keys in config.toml are an error that names them."""
    values = dict(DEFAULTS)
    config_file = instance / "config.toml"
    if config_file.exists():
        with config_file.open("rb") as fh:
            data = {k.upper(): v for k, v in tomllib.load(fh).items()}
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"{config_file}: unknown setting(s) {', '.join(unknown)}")
        values.update(data)
    for name, default in DEFAULTS.items():
        env = _from_env(name, default)
        if env is not None:
            values[name] = env
    values.update(overrides or {})
    if values["API_ACCESS"] not in ("paired", "public"):
        raise ValueError(f"API_ACCESS must be 'paired' or 'public', got {values['API_ACCESS']!r}")
    return values
