"""A callback that trickles its answer (one byte or header line a second) must not hold a hub
worker longer than the request's overall deadline: socket timeouts alone reset on every byte.
Over https too, where the certificate is checked against the URL's host, not the address."""
from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time

import pytest

from server.websub_http import Answer, request


def trickling_server(head: bytes, drip: bytes) -> tuple[str, socket.socket]:
    """A loopback server that sends ``head`` then ``drip`` every 0.2 s for 20 s, per connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            try:
                conn.sendall(head)
                for _ in range(100):
                    conn.sendall(drip)
                    time.sleep(0.2)
            except OSError:
                pass
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/cb", listener


@pytest.mark.parametrize("head,drip", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x"),  # a slow body
    (b"HTTP/1.1 200 OK\r\n", b"X-Drip: 1\r\n"),  # headers that never end
], ids=["body", "headers"])
def test_a_trickling_callback_is_cut_off_at_the_deadline(head, drip):
    url, listener = trickling_server(head, drip)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):  # cut off as a network failure, which the worker retries
            request("GET", url, allow_private=True, timeout=1.0)
    finally:
        listener.close()
    # timeout=1.0 bounds connect + whole answer; the server would go on for 20 s
    assert time.monotonic() - started < 5.0


@pytest.fixture
def tls_files(tmp_path):
    """A self-signed certificate for ``localhost`` (key, cert), made by openssl."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return key, cert


def tls_server(key, cert, head: bytes, drip: bytes, drips: int) -> tuple[int, socket.socket]:
    """Like ``trickling_server`` over TLS: ``head``, then ``drips`` times ``drip`` 0.2 s apart."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(65536)
                    conn.sendall(head)
                    for _ in range(drips):
                        conn.sendall(drip)
                        time.sleep(0.2)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], listener


def test_https_is_verified_and_bounded_by_the_same_deadline(tls_files, monkeypatch):
    key, cert = tls_files
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    port, listener = tls_server(key, cert, ok, b"", 0)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):  # not trusted: the system CAs only
            request("GET", f"https://localhost:{port}/cb", allow_private=True, timeout=5.0)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted now; the name is checked against the URL's host
        assert request("GET", f"https://localhost:{port}/cb", allow_private=True, timeout=5.0) == Answer(200, b"hello")
        with pytest.raises(ssl.SSLCertVerificationError):  # same address, a host the certificate does not name
            request("GET", f"https://127.0.0.1:{port}/cb", allow_private=True, timeout=5.0)
    finally:
        listener.close()
    port, listener = tls_server(key, cert, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x", 100)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            request("GET", f"https://localhost:{port}/cb", allow_private=True, timeout=1.0)
    finally:
        listener.close()
    assert time.monotonic() - started < 5.0
