"""Errors to HTTP, in one place: views raise (a domain error or ``abort``), this module answers.

Under ``/api/`` the body is RFC 9457 problem details (``application/problem+json``; with
``type`` ``about:blank`` the ``title`` is the status phrase, RFC 9457 §4.2.1); everywhere else
one plain-text line, for feed URLs that readers and people open directly.
"""
from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from feeds.errors import QueryError, RecordError, UnknownFeed
from feeds.store import UNAVAILABLE, StoreBusy

RETRY_AFTER = 2  # seconds a client should wait after a 503 for a busy index
log = logging.getLogger(__name__)


def error_response(status: int, detail: str, **extra: object) -> Response:
    """The error body for this request's surface; ``extra`` members (e.g. ``parameter``) go
    into problem details only."""
    if request.path.startswith("/api/"):
        body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
                **extra}
        return Response(json.dumps(body, ensure_ascii=False) + "\n", status=status,
                        content_type="application/problem+json")
    return Response(detail.rstrip() + "\n", status=status, content_type="text/plain; charset=utf-8")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    resp = error_response(status, exc.description or HTTPStatus(status).phrase)
    for name, value in exc.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            resp.headers[name] = value
    return resp


def init_app(app: Flask) -> None:
    """Register the one mapping from errors to responses."""
    app.register_error_handler(QueryError, lambda exc: error_response(400, str(exc), parameter=exc.param))
    app.register_error_handler(UnknownFeed, lambda exc: error_response(404, str(exc)))
    app.register_error_handler(RecordError, lambda exc: error_response(400, str(exc)))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreBusy, _busy)
    for unavailable in UNAVAILABLE:
        app.register_error_handler(unavailable, _database_unavailable)


def _busy(exc: StoreBusy) -> Response:
    """RFC 9110 §15.6.4: 503 with ``Retry-After``; the write changed nothing."""
    resp = error_response(503, f"{exc}; nothing was changed, retry later")
    resp.headers["Retry-After"] = str(RETRY_AFTER)
    return resp


def _database_unavailable(exc: Exception) -> Response:
    """The database refused, dropped or could not hand out a connection (PostgreSQL down or at
    ``max_connections``, this process's pool exhausted: ``feeds.store.UNAVAILABLE``): RFC 9110 §15.6.4 503 with
    ``Retry-After`` (behind nginx a read is then retried on another process), and one log line
    with the driver's reason; the body does not repeat it (it names hosts and ports)."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    log.error("database unavailable: %.300s (PostgreSQL down, or processes x db_pool_size past its "
              "max_connections? README \"Scaling out\")", reason)
    resp = error_response(503, "the database is unavailable at the moment; retry later")
    resp.headers["Retry-After"] = str(RETRY_AFTER)
    return resp
