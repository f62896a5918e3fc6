"""Curator writes: POST/PUT/DELETE /api/v1/articles[/<id>] with the admin token.

A write is validated exactly like an imported file (same messages), written atomically into
the last content root's ``_news/`` (later roots override earlier ones, so the edit wins), and
indexed in the same database transaction: file and index change together or not at all (an
index failure puts the file back). Writes to one id are serialised by a per-id lock, and the
index's write lock is claimed first; either wait is bounded by ``write_lock_timeout``, past
which the answer is 503 with ``Retry-After`` and nothing changed.

Every article's version tag is the SHA-256 of its record file, sent as a strong ``ETag``;
PUT and DELETE honour ``If-Match`` (RFC 9110 §13.1.1: 412 when it does not match) so API
clients can avoid lost updates. Body size is bounded by ``MAX_CONTENT_LENGTH`` (413).
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from werkzeug.http import quote_etag

from feeds.importer import ImportRefused, index_record, sync, taxonomy_current
from feeds.recordfiles import find_record
from feeds.store import StoreBusy, Transaction
from feeds.taxonomy import load_taxonomy
from feeds.writer import FileChange, check_id, delete_record, new_id, write_record

from .api_objects import article_objects
from .auth import admin_required
from .context import get_store, render_cache
from .links import links

bp = Blueprint("curator", __name__, url_prefix="/v1/articles")


class _IdLocks:
    """One lock per article id being written, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextmanager
    def hold(self, key: str, timeout: float) -> Iterator[None]:
        """Hold ``key``'s lock; ``StoreBusy`` after ``timeout`` seconds of waiting."""
        with self._mutex:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            if not lock.acquire(timeout=timeout):
                raise StoreBusy(f"another write to '{key}' held it for more than {timeout:g} s")
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._mutex:
                users[0] -= 1
                if not users[0]:
                    del self._locks[key]


_locks = _IdLocks()


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


def _check_if_match(article_id: str, current: str | None) -> None:
    """412 when ``If-Match`` names no current version (``*`` matches any existing one), or when
    ``If-None-Match`` names the current one (``*``: any existing version)."""
    wanted = request.if_match
    if "If-Match" in request.headers and (current is None or not (wanted.star_tag or wanted.contains(current))):
        have = f'"{current}"' if current else "no version (it does not exist)"
        abort(412, f"If-Match does not match article '{article_id}': it is at {have}")
    # RFC 9110 §13.1.2: `If-None-Match: *` is how a PUT says "only create"; a listed tag that
    # matches the current version fails the same way
    if "If-None-Match" in request.headers and current is not None:
        unwanted = request.if_none_match
        if unwanted.star_tag or unwanted.contains(current):
            abort(412, f"If-None-Match: article '{article_id}' exists at \"{current}\"")


Change = Callable[[Transaction, list[Path], FileChange], tuple[bytes, int] | None]


def _write(article_id: str, change_files: Change) -> Response:
    """Under the per-id lock: one index transaction holding the write lock, in which
    ``change_files`` changes the files (through the ``FileChange`` it is given, so they are put
    back if anything fails before the commit) and returns (bytes written, status), or None for
    a deletion; then the record is indexed, committed, and the answer built from the index."""
    roots = content_roots()
    missing = [str(root) for root in roots if not root.is_dir()]
    if missing:  # an unmounted disk: the file would land on the bare mount point, hidden once it is back
        raise StoreBusy(f"content root(s) {', '.join(missing)} do not exist (not mounted?)")
    timeout = current_app.config["WRITE_LOCK_TIMEOUT"]
    store = get_store()
    taxonomy = load_taxonomy(roots)
    change = FileChange()
    with _locks.hold(article_id, timeout):
        try:
            with store.write(lock_timeout=timeout) as tx:
                written = change_files(tx, roots, change)
                index_record(tx, roots, taxonomy, article_id)
        except BaseException:
            change.undo()
            raise
        if not taxonomy_current(store, taxonomy):  # a topic file changed too: re-resolve every record
            try:
                sync(store, roots, max_removal=current_app.config["IMPORT_MAX_REMOVAL"])
            except ImportRefused as exc:  # the write itself is committed; the operator must look
                current_app.logger.warning("curator write of %s: taxonomy not re-resolved: %s", article_id, exc)
        render_cache().invalidate()
        return Response(status=204) if written is None else _article_response(article_id, *written)


def _article_response(article_id: str, data: bytes, status: int) -> Response:
    store = get_store()
    row = store.article(article_id, public_only=False)
    assert row is not None  # written and committed under the lock this thread still holds
    link_builder = links()
    resp = jsonify(article_objects(store, [row], link_builder, g.secret, full=True)[0])
    resp.status_code = status
    resp.headers["Location"] = link_builder.api("api.v1.article", article_id=article_id)
    resp.headers["ETag"] = quote_etag(hashlib.sha256(data).hexdigest())
    return resp


@bp.post("")
@admin_required
def create() -> Response:
    fields = _fields()
    article_id = check_id(str(fields["id"])) if fields.get("id") else new_id(fields)

    def create_file(tx: Transaction, roots: list[Path], change: FileChange) -> tuple[bytes, int]:
        if tx.article_version(article_id) is not None or find_record(roots, article_id) is not None:
            abort(409, f"article '{article_id}' exists; use PUT /api/v1/articles/{article_id}")
        return write_record(roots[-1], article_id, fields, change), 201

    return _write(article_id, create_file)


@bp.put("/<article_id>")
@admin_required
def replace(article_id: str) -> Response:
    fields = _fields()
    check_id(article_id)

    def replace_file(tx: Transaction, roots: list[Path], change: FileChange) -> tuple[bytes, int]:
        current = tx.article_version(article_id)
        _check_if_match(article_id, current)
        return write_record(roots[-1], article_id, fields, change), 200 if current else 201

    return _write(article_id, replace_file)


@bp.delete("/<article_id>")
@admin_required
def remove(article_id: str) -> Response:
    check_id(article_id)

    def delete_file(tx: Transaction, roots: list[Path], change: FileChange) -> None:
        current = tx.article_version(article_id)
        _check_if_match(article_id, current)
        if not delete_record(roots[-1], article_id, change):
            if current is not None:
                abort(409, f"article '{article_id}' lives in a read-only content root, not {roots[-1]}")
            abort(404, f"no article '{article_id}'")

    return _write(article_id, delete_file)
