"""Request-wide input rules checked before any view runs.

A NUL character (``%00``) is refused in the path and in every query parameter: no slug, id,
domain or search term contains one, and PostgreSQL text cannot hold it (psycopg raises
``DataError``), so letting it reach a query answered 500 on PostgreSQL and 404 on SQLite.
Refusing it here gives one answer, 400 naming where it was, on both backends.
"""
from __future__ import annotations

from flask import Flask, request

from feeds.errors import QueryError


def _refuse_nul() -> None:
    if "\x00" in request.path:
        raise QueryError("path", "the URL path contains a NUL character (%00)")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise QueryError(name.replace("\x00", "\\x00")[:40],
                             f"parameter {name[:40]!r} contains a NUL character (%00)")


def init_app(app: Flask) -> None:
    """Register the request-wide checks."""
    app.before_request(_refuse_nul)
