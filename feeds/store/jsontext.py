"""How JSON columns and meta values are written: canonical compact JSON text."""
from __future__ import annotations

import json
from typing import Any


class RawJSON(str):
    """JSON text already in ``dumps`` form. The importer encodes each record where it was parsed
    (a worker process), so the writing process neither unpickles the record's object tree nor
    encodes it again: ``dumps`` returns such text unchanged."""


def dumps(value: Any) -> str:
    """Canonical compact JSON (sorted keys, no spaces, non-ASCII as is); ``RawJSON`` as is."""
    if type(value) is RawJSON:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
