"""Feed/API query parameters, validated once with messages that name the parameter."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import QueryError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_Q_LENGTH = 200
FILTER_PARAMS = ("min_quality", "min_heat", "type", "q")  # the filters feeds and API lists share
FEED_PARAMS = ("limit", *FILTER_PARAMS)


@dataclass(frozen=True)
class FeedQuery:
    limit: int = DEFAULT_LIMIT
    min_quality: int | None = None
    min_heat: int | None = None
    type: str | None = None
    q: str | None = None

    def cache_key(self) -> tuple:
        return (self.limit, self.min_quality, self.min_heat, self.type, self.q)

    def as_params(self) -> dict[str, str]:
        """Non-default parameters, for building self links and signed private feed tokens."""
        params = {"limit": str(self.limit)} if self.limit != DEFAULT_LIMIT else {}
        for name in FILTER_PARAMS:
            value = getattr(self, name)
            if value is not None:
                params[name] = str(value)
        return params


INT_RANGE = (-(2**31), 2**31 - 1)  # what the store's integer columns hold on SQLite and PostgreSQL
_INTEGER = re.compile(r"[+-]?[0-9]{1,10}")


def _integer(args: Mapping[str, str], name: str, low: int = INT_RANGE[0], high: int = INT_RANGE[1]) -> int | None:
    """An optional integer parameter: ASCII digits only (``int()`` would take ``²`` or Arabic-Indic
    digits), within ``low``..``high``; raises ``QueryError`` naming the parameter."""
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not _INTEGER.fullmatch(raw.strip()):
        raise QueryError(name, f"parameter '{name}' must be an integer, got {str(raw)[:40]!r}")
    value = int(raw.strip())
    if not low <= value <= high:
        raise QueryError(name, f"parameter '{name}' must be between {low} and {high}, got {raw.strip()[:40]}")
    return value


def parse_query(args: Mapping[str, str]) -> FeedQuery:
    """Build a ``FeedQuery`` from request arguments; raises ``QueryError`` on any bad value."""
    limit = _integer(args, "limit", 1, MAX_LIMIT)
    q = str(args.get("q") or "").strip() or None
    if q and len(q) > MAX_Q_LENGTH:
        raise QueryError("q", f"parameter 'q' must be at most {MAX_Q_LENGTH} characters")
    kind = str(args.get("type") or "").strip() or None
    if kind and not kind.replace("-", "").isalnum():
        raise QueryError("type", f"parameter 'type' must be a word such as 'article' or 'video', got {kind[:40]!r}")
    return FeedQuery(
        limit=DEFAULT_LIMIT if limit is None else limit,
        min_quality=_integer(args, "min_quality"),
        min_heat=_integer(args, "min_heat"),
        type=kind,
        q=q,
    )
