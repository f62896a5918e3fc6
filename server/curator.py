"""Curator writes: POST/PUT/DELETE /api/v1/articles[/<id>] with the admin token.

A write is validated exactly like an imported file (same messages), written atomically into
the last content root's ``_news/`` (later roots override earlier ones, so the edit wins),
then that one record is indexed (``feeds.importer.index_one``), so feeds and the API reflect
it at once. Body size is bounded by Flask's ``MAX_CONTENT_LENGTH`` (413 before parsing).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request

from feeds.importer import index_one
from feeds.writer import check_id, delete_record, new_id, write_record

from .api_objects import article_objects
from .auth import admin_required
from .context import get_store, render_cache
from .links import links

bp = Blueprint("curator", __name__, url_prefix="/v1/articles")


def content_roots() -> list[Path]:
    """The configured content roots, else those of the last import; 409 when there are none."""
    configured = current_app.config["CONTENT_DIRS"]
    if configured:
        return [Path(p) for p in configured]
    stored = get_store().get_meta("roots")
    if not stored:
        abort(409, "no content directory: set content_dirs or run `topicfeed import DIR` first")
    return [Path(p) for p in json.loads(stored)]


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members, refusing a name written twice: json.loads would keep the last one,
    so ``"published": false`` followed by ``"published": true`` would silently publish
    (RFC 8259 §4 leaves duplicates to the parser; the YAML loader refuses them too)."""
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key in fields:
            raise _DuplicateKey(f"key {key[:60]!r} is written twice: remove one")
        fields[key] = value
    return fields


def _fields() -> dict[str, Any]:
    try:
        fields = json.loads(request.get_data(cache=False), object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        abort(400, f"body: {exc}")
    except ValueError as exc:
        abort(400, f"body is not JSON: {exc}")
    except RecursionError:
        abort(400, "body is not JSON this server accepts: nested too deeply")
    if not isinstance(fields, dict):
        abort(400, "body must be a JSON object of record fields")
    return fields


def _save(article_id: str, fields: dict[str, Any], status: int) -> Response:
    roots = content_roots()
    write_record(roots[-1], article_id, fields)  # RecordError → 400, nothing written
    store = get_store()
    index_one(store, roots, article_id)
    render_cache().invalidate()
    row = store.article(article_id, public_only=False)
    assert row is not None
    link_builder = links()
    resp = jsonify(article_objects(store, [row], link_builder, g.secret, full=True)[0])
    resp.status_code = status
    resp.headers["Location"] = link_builder.api("api.v1.article", article_id=article_id)
    return resp


@bp.post("")
@admin_required
def create() -> Response:
    fields = _fields()
    article_id = check_id(str(fields["id"])) if fields.get("id") else new_id(fields)
    if get_store().article(article_id, public_only=False) is not None:
        abort(409, f"article '{article_id}' exists; use PUT /api/v1/articles/{article_id}")
    return _save(article_id, fields, 201)


@bp.put("/<article_id>")
@admin_required
def replace(article_id: str) -> Response:
    fields = _fields()
    check_id(article_id)
    exists = get_store().article(article_id, public_only=False) is not None
    return _save(article_id, fields, 200 if exists else 201)


@bp.delete("/<article_id>")
@admin_required
def remove(article_id: str) -> Response:
    check_id(article_id)
    roots = content_roots()
    if not delete_record(roots[-1], article_id):
        if get_store().article(article_id, public_only=False) is not None:
            abort(409, f"article '{article_id}' lives in a read-only content root, not {roots[-1]}")
        abort(404, f"no article '{article_id}'")
    index_one(get_store(), roots, article_id)
    render_cache().invalidate()
    return Response(status=204)
