"""One function builds every error body: plain text for feeds, problem+json for the API."""
from __future__ import annotations

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException


def problem(status: int, title: str, detail: str, **extra: object) -> Response:
    """RFC 9457 problem details."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(json.dumps(body, ensure_ascii=False) + "\n", status=status, content_type="application/problem+json")


def plain_error(status: int, message: str) -> Response:
    """A one-line plain-text error, for feed URLs that readers and people open directly."""
    return Response(message.rstrip() + "\n", status=status, content_type="text/plain; charset=utf-8")


def init_app(app: Flask) -> None:
    """HTTP errors under /api/ answer in problem+json, elsewhere in plain text."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if request.path.startswith("/api/"):
            return problem(status, exc.name, exc.description or exc.name)
        return plain_error(status, f"{status} {exc.name}: {exc.description or ''}")
