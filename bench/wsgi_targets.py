"""Baselines for bench/server_bench.py, as factories for ``server.serving.run``: a bare Flask
app and a raw WSGI callable returning the bytes of the file named by $BENCH_FEED_BYTES."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any


def _body() -> bytes:
    with open(os.environ["BENCH_FEED_BYTES"], "rb") as fh:
        return fh.read()


def bare_flask() -> Any:
    """One Flask route returning the bytes (the issue's baseline)."""
    from flask import Flask, Response

    body = _body()
    app = Flask("bare")

    @app.get("/<path:_any>")
    def feed(_any: str) -> Response:
        return Response(body, content_type="application/atom+xml; charset=utf-8")

    return app


def raw() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The least a WSGI app can do: the server's own ceiling."""
    body = _body()
    headers = [("Content-Type", "application/atom+xml; charset=utf-8"), ("Content-Length", str(len(body)))]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", headers)
        return [body]

    return app
