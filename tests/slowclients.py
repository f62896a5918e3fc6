"""Slow clients for tests and bench: connections that send a request header one byte at a
time, every few seconds, so each stays open for as long as the server lets it."""
from __future__ import annotations

import socket
import threading
import time

HEADER = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 4096


class SlowClients:
    """``count`` sockets to ``port``, each sending one more header byte every ``interval`` seconds."""

    def __init__(self, port: int, count: int, interval: float = 2.0) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        sent = 0
        while not self._stop.wait(self.interval) and sent < len(HEADER):
            for sock in self.socks:
                try:
                    sock.send(HEADER[sent:sent + 1])
                except OSError:
                    pass
            sent += 1

    def open_count(self) -> int:
        """How many of the sockets the server has not closed (a closed one reads EOF)."""
        alive = 0
        for sock in self.socks:
            sock.setblocking(False)
            try:
                alive += sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
            finally:
                sock.setblocking(True)
        return alive

    def close(self) -> None:
        self._stop.set()
        for sock in self.socks:
            sock.close()


def probe(url: str, timeout: float = 60.0) -> float:
    """Seconds one fresh connection takes to get ``url`` answered."""
    import urllib.request

    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        resp.read()
    return time.perf_counter() - started
