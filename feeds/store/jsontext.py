"""How JSON columns and meta values are written: canonical compact JSON text."""
from __future__ import annotations

import json
from typing import Any

import orjson


class RawJSON(str):
    """JSON text already in ``dumps`` form. The importer encodes each record where it was parsed
    (a worker process), so the writing process neither unpickles the record's object tree nor
    encodes it again: ``dumps`` returns such text unchanged."""


def dumps(value: Any) -> str:
    """Canonical compact JSON (sorted keys, no spaces, non-ASCII as is); ``RawJSON`` as is."""
    if type(value) is RawJSON:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def record_json(value: Any) -> str:
    """``dumps(value)`` for a record (or a structure of records) without floats: the same text,
    from orjson at a fifth of the cost. Records hold no floats (``feeds.records`` turns them
    into integers or text), the one type whose text orjson writes differently (``1e+16`` is
    ``1e16`` there); what orjson refuses (integers past 64 bits, lone surrogates, non-text keys,
    deep nesting) goes through ``json`` as before. tests/test_store_rawjson.py compares both."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return dumps(value)
