"""A real WebSub subscriber for tests and the benchmark: an HTTP server on loopback that answers
verification GETs and records every request it gets."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


class Subscriber:
    """``behaviour[path]``: "echo" (default: echo the challenge, 204 to POSTs), "wrong" (answer a
    wrong challenge), "fail" (500 to POSTs), "redirect" (302 to every request)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.behaviour: dict[str, str] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _record(self, body: bytes) -> tuple[Received, str]:
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                got = Received(self.command, parts.path, params, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer.lock:
                    outer.received.append(got)
                return got, outer.behaviour.get(parts.path, "echo")

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                got, behaviour = self._record(b"")
                if behaviour == "redirect":
                    self._answer(302, headers={"Location": "http://127.0.0.1:9/elsewhere"})
                elif behaviour == "wrong":
                    self._answer(200, b"not-the-challenge")
                else:
                    self._answer(200, got.params.get("hub.challenge", "").encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                _, behaviour = self._record(body)
                self._answer({"fail": 500, "redirect": 302}.get(behaviour, 204))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def of(self, method: str, path: str | None = None, mode: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == method and (path is None or r.path == path)
                    and (mode is None or r.params.get("hub.mode") == mode)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    """Poll ``check`` until it returns something truthy (generous timeout: CI machines are slow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
