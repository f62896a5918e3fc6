"""Curator writes: POST/PUT/DELETE /api/v1/articles[/<id>] with the admin token.

A write is validated exactly like an imported file (same messages), written atomically into
the last content root's ``_news/`` (later roots override earlier ones, so the edit wins),
then that one record is indexed (``feeds.importer.index_one``), so feeds and the API reflect
it at once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from itsdangerous import BadSignature

from feeds.errors import RecordError
from feeds.importer import index_one
from feeds.writer import check_id, delete_record, new_id, write_record

from . import get_store
from .api import bearer_token, keyring
from .api_objects import article_object
from .httpcache import render_cache
from .problems import problem
from .signing import ADMIN_TOKEN, unsign

bp = Blueprint("curator", __name__, url_prefix="/api/v1/articles")


def content_roots() -> list[Path]:
    configured = current_app.config["CONTENT_DIRS"]
    if configured:
        return [Path(p) for p in configured]
    stored = get_store().get_meta("roots")
    return [Path(p) for p in json.loads(stored)] if stored else []


@bp.before_request
def require_admin() -> Response | None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    token = bearer_token()
    try:
        if not token or unsign(token, ADMIN_TOKEN, keyring()).get("admin") is not True:
            raise BadSignature("not an admin token")
    except (BadSignature, AttributeError):
        return problem(401, "Unauthorized", "curator writes need the admin token (`topicfeed admin-token`) as 'Authorization: Bearer …'")
    if request.content_length and request.content_length > current_app.config["MAX_BODY_BYTES"]:
        return problem(413, "Payload Too Large", f"request bodies are limited to {current_app.config['MAX_BODY_BYTES']} bytes")
    if not content_roots():
        return problem(409, "Conflict", "no content directory: set content_dirs or run `topicfeed import DIR` first")
    return None


def _fields() -> dict[str, Any] | Response:
    body = request.get_data(cache=False)
    if len(body) > current_app.config["MAX_BODY_BYTES"]:
        return problem(413, "Payload Too Large", f"request bodies are limited to {current_app.config['MAX_BODY_BYTES']} bytes")
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested ~1000 deep
        return problem(400, "Bad Request", f"body is not JSON: {exc}")
    if not isinstance(fields, dict):
        return problem(400, "Bad Request", "body must be a JSON object of record fields")
    return fields


def _save(article_id: str, fields: dict[str, Any], status: int) -> Response:
    roots = content_roots()
    try:
        write_record(roots[-1], article_id, fields)
    except RecordError as exc:
        return problem(400, "Invalid record", str(exc))
    store = get_store()
    index_one(store, roots, article_id)
    render_cache().invalidate()
    row = store.article(article_id, public_only=False)
    assert row is not None
    neighbours = store.articles_by_ids(row.related)
    resp = jsonify(article_object(row, neighbours, store.topic_names(), keyring()))
    resp.status_code = status
    resp.headers["Location"] = f"/api/v1/articles/{article_id}"
    return resp


@bp.post("")
def create() -> Response:
    fields = _fields()
    if isinstance(fields, Response):
        return fields
    try:
        article_id = check_id(str(fields["id"])) if fields.get("id") else new_id(fields)
    except RecordError as exc:
        return problem(400, "Invalid record", exc.reason)
    if get_store().article(article_id, public_only=False) is not None:
        return problem(409, "Conflict", f"article '{article_id}' exists; use PUT /api/v1/articles/{article_id}")
    return _save(article_id, fields, 201)


@bp.put("/<article_id>")
def replace(article_id: str) -> Response:
    fields = _fields()
    if isinstance(fields, Response):
        return fields
    try:
        check_id(article_id)
    except RecordError as exc:
        return problem(400, "Invalid record", exc.reason)
    exists = get_store().article(article_id, public_only=False) is not None
    return _save(article_id, fields, 200 if exists else 201)


@bp.delete("/<article_id>")
def remove(article_id: str) -> Response:
    try:
        check_id(article_id)
    except RecordError as exc:
        return problem(400, "Invalid record", exc.reason)
    roots = content_roots()
    if not delete_record(roots[-1], article_id):
        if get_store().article(article_id, public_only=False) is not None:
            return problem(409, "Conflict", f"article '{article_id}' lives in a read-only content root, not {roots[-1]}")
        return problem(404, "Not Found", f"no article '{article_id}'")
    index_one(get_store(), roots, article_id)
    render_cache().invalidate()
    return Response(status=204)
