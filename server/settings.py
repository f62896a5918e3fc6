"""Settings declared once as data: name, default, help. Sources, later wins: defaults,
``<instance>/config.toml``, ``TOPICFEED_<NAME>`` environment variables, test overrides."""
from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Setting:
    """One setting; a number outside ``low``..``high`` (inclusive, when given) is refused."""

    name: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    env_sep: str = os.pathsep  # how a list setting's environment variable is split


SETTINGS = [
    Setting("DATABASE_URL", "", "SQLAlchemy URL of the index; empty = SQLite file topicfeed.db in the instance folder"),
    Setting("ROLE", "single", "'single' (one process does everything), 'writer' (the one process that writes record files, imports and migrates) or 'reader' (serves reads, refuses writes with 421)"),
    Setting("WRITER_URL", "", "base URL of the writer process, named in a reader's refusals (needed when role = 'reader')"),
    Setting("WRITER_LEASE_SECONDS", 30.0, "seconds the writer's lease lasts unless renewed (every third of it while a writer runs); another writer may start once no process of it runs and half of it passed since the last renewal", 2, 3600),
    Setting("DB_POOL_SIZE", 10, "PostgreSQL connections one pool keeps at most (one pool per serve process or worker: requests and the WebSub worker share it); see README Scaling out", 1, 1000),
    Setting("AUTO_UPGRADE", True, "migrate the index to this version's schema at start (locked); false: `topicfeed upgrade` does it"),
    Setting("CONTENT_DIRS", [], "content roots in the everyday-cc layout; later ones override earlier ones"),
    Setting("PUBLIC_BASE_URL", "", "absolute URL the service is reached at (feeds' self links); empty = from the request"),
    Setting("SITE_TITLE", "topicfeed", "title of the HTML index and the OPML list"),
    Setting("CACHE_MAX_AGE", 300, "seconds readers and proxies may reuse a feed (Cache-Control max-age)", 0),
    Setting("RENDER_CACHE_MB", 32, "megabytes of rendered documents (bodies and their gzip copies) kept per server process", 1),
    Setting("ENTRY_CACHE_MB", 4, "megabytes of rendered feed entries kept per server process for the next feed document showing them (keyed by the entry's content, so writes never leave one stale); 0 = none", 0),
    Setting("VERSION_TTL", 0.25, "seconds a process trusts its last reading of the store's change log (a write elsewhere shows here within it; one indexed query per period)", 0),
    Setting("TARGETED_INVALIDATION", True, "a write drops only the cached documents it changed; false: every write drops all (the old behaviour, for comparison)"),
    Setting("API_ACCESS", "paired", "'paired': every /api request needs a client token; 'public': anyone may read"),
    Setting("API_PAGE_SIZE", 20, "items per page of paged API collections", 1, 100),
    Setting("MAX_BODY_BYTES", 256 * 1024, "largest accepted request body (bytes); refused with 413 before it is read", 1),
    Setting("MAX_HEADER_BYTES", 32 * 1024, "largest accepted request line + headers (bytes)", 1024),
    Setting("CONNECTION_LIMIT", 500, "client connections the server handles at once (granian, gunicorn: per worker process; see the README's Limits)", 1),
    Setting("HEADER_TIMEOUT", 30, "seconds a connection may stay silent (sending no byte) before it is closed", 1),
    Setting("WRITE_LOCK_TIMEOUT", 5.0, "seconds a curator write waits for the index's write lock, then answers 503", 0.01),
    Setting("IMPORT_MAX_REMOVAL", 0.5, "share (0 to 1) of the index an import may remove without --allow-mass-removal", 0, 1),
    Setting("IMPORT_MEMORY_MB", 150, "peak memory (MB, PSS of the import's process tree) that sizes an import's worker processes", 40),
    Setting("TRUSTED_HOSTS", [], "Host header values answered (e.g. [\"feeds.example.org\"]); others get 400; empty = any (env: comma-separated)", env_sep=","),
    Setting("PROXY_FIX_HOPS", 0, "reverse proxies in front that set X-Forwarded-For/-Proto/-Host (werkzeug ProxyFix); 0 = none", 0, 5),
    Setting("METRICS_ALLOW", ["127.0.0.1/32", "::1/128"], "client networks (CIDR) that may read /metrics; empty = nobody (env: comma-separated)", env_sep=","),
    Setting("LOG_FORMAT", "text", "'text' or 'json' (one JSON object per log line, for log shippers)"),
    Setting("WATCH_DEBOUNCE", 5.0, "seconds `import --watch` waits for the content roots to be quiet before importing", 0),
    Setting("WEBSUB_HUB", "", "URL of an external WebSub hub to advertise and ping (pings need public_base_url); empty = topicfeed is its own hub when public_base_url is set"),
    Setting("WEBSUB_ALLOW_PRIVATE", False, "let WebSub callbacks reach private, loopback and link-local addresses (intranets, tests)"),
    Setting("WEBSUB_LEASE_SECONDS", 10 * 86400, "WebSub lease when the subscriber asks for none"),
    Setting("WEBSUB_MIN_LEASE_SECONDS", 3600, "shortest WebSub lease granted (shorter requests are raised to it)"),
    Setting("WEBSUB_MAX_LEASE_SECONDS", 30 * 86400, "longest WebSub lease granted (longer requests are cut to it)"),
    Setting("WEBSUB_MAX_PER_HOST", 100, "WebSub subscriptions allowed per callback host"),
    Setting("WEBSUB_MAX_SUBSCRIPTIONS", 10000, "WebSub subscriptions allowed in total"),
    Setting("WEBSUB_RATE_LIMIT", 30, "WebSub hub requests accepted per minute from one client address"),
    Setting("WEBSUB_TIMEOUT", 5.0, "seconds one whole WebSub request may take (connect, send, the bounded answer)"),
    Setting("WEBSUB_RETRY_SECONDS", 30.0, "first wait before retrying a failed WebSub request (doubles each time, at most an hour)"),
    Setting("WEBSUB_GIVE_UP_SECONDS", 6 * 3600.0, "seconds after which a failing WebSub request is dropped"),
    Setting("WEBSUB_POLL_SECONDS", 1.0, "how often the WebSub worker looks for changed feeds and due requests"),
    Setting("WEBSUB_CONCURRENCY", 8, "WebSub requests one process makes at once"),
]
DEFAULTS = {s.name: s.default for s in SETTINGS}
_ENV_SEP = {s.name: s.env_sep for s in SETTINGS}


def _from_env(name: str, default: Any) -> Any:
    raw = os.environ.get(f"TOPICFEED_{name}")
    if raw is None:
        return None
    if isinstance(default, list):
        return [p.strip() for p in raw.split(_ENV_SEP[name]) if p.strip()]
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
    for setting in SETTINGS:
        value = values[setting.name]
        # `not low <= value` (not `value < low`) so that nan, which compares false, is refused too;
        # inf is refused as well: every bounded setting is a count, a share or a finite wait
        if isinstance(value, (int, float)) and not isinstance(value, bool) and setting.low is not None and (
                not setting.low <= value < math.inf or (setting.high is not None and not value <= setting.high)):
            bounds = f"from {setting.low:g}" + (f" to {setting.high:g}" if setting.high is not None else " up")
            raise ValueError(f"setting '{setting.name.lower()}' must be {bounds}, got {value!r:.40}")
    if values["API_ACCESS"] not in ("paired", "public"):
        raise ValueError(f"setting 'api_access' must be 'paired' or 'public', got {values['API_ACCESS']!r:.40}")
    _check_urls(values)
    _check_role(values)
    if values["LOG_FORMAT"] not in ("text", "json"):
        raise ValueError(f"setting 'log_format' must be 'text' or 'json', got {values['LOG_FORMAT']!r:.40}")
    for cidr in values["METRICS_ALLOW"]:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"setting 'metrics_allow': {cidr!r:.60} is not an IP network (CIDR)") from None
    return values


def _check_urls(values: dict[str, Any]) -> None:
    """Feeds carry ``public_base_url`` in every self link, so it must be an absolute http(s) URL
    (RFC 3986 §4.3) with nothing after the path; the index must be SQLite or PostgreSQL."""
    base = values["PUBLIC_BASE_URL"]
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("setting 'public_base_url' must be an absolute http(s) URL without query or "
                             f"fragment, e.g. 'https://feeds.example.org', got {base!r:.80}")
    database = values["DATABASE_URL"]
    if database and database.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql"):
        raise ValueError("setting 'database_url' must be an SQLAlchemy URL for SQLite or PostgreSQL "
                         f"('sqlite:///…', 'postgresql+psycopg://…'), got {database.split(':', 1)[0]!r:.40}")


def _check_role(values: dict[str, Any]) -> None:
    """Every process of a scale-out (role writer or reader) must render the same bytes and sign
    with the same keys, so it needs the shared index and the public base URL; a reader also
    needs the writer's URL to name it when it refuses a write (README "Scaling out")."""
    role = values["ROLE"]
    if role not in ("single", "writer", "reader"):
        raise ValueError(f"setting 'role' must be 'single', 'writer' or 'reader', got {role!r:.40}")
    if role == "single":
        return
    if not values["PUBLIC_BASE_URL"]:
        raise ValueError(f"setting 'public_base_url' must be set when role = '{role}': "
                         "every process must emit the same links")
    if role == "reader" and not values["DATABASE_URL"]:
        raise ValueError("setting 'database_url' must name the writer's index when role = 'reader' "
                         "(empty would serve this folder's own SQLite file)")
    writer = values["WRITER_URL"]
    if role == "reader" and not writer:
        raise ValueError("setting 'writer_url' must be set when role = 'reader' (refused writes name it)")
    if writer:
        parts = urlsplit(writer)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"setting 'writer_url' must be an absolute http(s) URL, got {writer!r:.80}")
