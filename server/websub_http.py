"""Outbound HTTP for the WebSub hub, safe against server-side request forgery.

A callback URL is checked before any request: http or https, a host, and (unless private
targets are allowed) every address it resolves to is public. The check that needs no DNS also
reads the host the way the system resolver would (``127.1``, ``0x7f000001``, ``0``, ``localhost.``
are loopback spellings too), so the subscription request is refused at once with a clear error.
The connection then goes to the address that was checked — resolved once, the ``Host`` header
and TLS server name set from the URL — so a DNS answer that changes between check and connect
(rebinding) cannot redirect it. Redirects are never followed (a 3xx is a failure, so no later
hop escapes the check), response bodies are read up to a bound, and the whole request (connect,
TLS handshake, send, status line, headers and the bounded body) has one deadline: socket
timeouts alone restart with every byte, so a callback that trickles its answer would otherwise
hold a hub worker for ever. Only the hub's worker calls this, never a request thread.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

MAX_READ = 64 * 1024  # bytes of a response body read (a challenge echo is tiny)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291 §2.5.5.1 (deprecated): same


class CallbackRefused(ValueError):
    """The URL may not be requested; the message says why (one line)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most MAX_READ bytes


def check_syntax(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL with a host; raises ``CallbackRefused``.

    The URL must be one ``http.client`` can send as it is (RFC 3986 / RFC 9112 request line):
    ASCII without spaces or control characters, and a host DNS can look up (labels of at most
    63 characters, RFC 1035 §2.3.4). Anything else would be accepted and then fail on every try."""
    if not url.isascii() or any(ch <= " " or ch == "\x7f" for ch in url):
        # checked before urlsplit, which silently drops tabs and newlines (bpo-43882)
        raise CallbackRefused("must be ASCII without spaces or control characters "
                              "(percent-encode the path, IDNA-encode a non-ASCII host)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused(f"must be an http or https URL, got scheme {parts.scheme[:20]!r}")
    if not parts.hostname:
        raise CallbackRefused("has no host")
    if parts.username or parts.password:
        raise CallbackRefused("must not carry credentials")
    if len(parts.hostname) > 253 or any(len(label) > 63 for label in parts.hostname.split(".")):
        raise CallbackRefused("has a host name too long for DNS (labels of at most 63 characters)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to its destination (mapped, 6to4, NAT64, compatible)."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # :: and ::1 are not IPv4 carriers
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    """A globally routable unicast address (not private, loopback, link-local, reserved…);
    an IPv6 address that carries an IPv4 one (RFC 4291, 3056, 6052) must carry a public one."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return is_public(str(inner))
        if ip.is_site_local:  # fec0::/10: deprecated (RFC 3879) but still not the public internet
            return False
    return ip.is_global and not ip.is_multicast


def numeric_address(host: str) -> str | None:
    """The address a numeric host stands for, read as the system resolver reads it: IPv6
    literals, and IPv4 in every ``inet_aton`` spelling (``127.1``, ``0x7f000001``, ``017700000001``,
    ``2130706433``, ``0``); None for a DNS name. ``host`` has no brackets and no trailing dot."""
    try:
        return str(ipaddress.ip_address(host.split("%")[0]))
    except ValueError:
        pass
    try:
        # inet_aton is the parser getaddrinfo uses for numeric IPv4 hosts, so a spelling it
        # accepts is exactly one the connection would reach
        return socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, UnicodeError, ValueError):
        return None


def check_literal(url: str, allow_private: bool) -> str:
    """Request-time check that needs no DNS: the syntax, and an IP literal (any spelling) or a
    ``localhost`` name must be public unless ``allow_private``. Returns the lower-cased host
    without trailing dots; raises ``CallbackRefused``."""
    _, host, _ = check_syntax(url)
    host = host.lower().rstrip(".")  # "localhost." is the same name, absolute (RFC 1034 §3.1)
    if allow_private:
        return host
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761 §6.3
        raise CallbackRefused(f"host {host} is a loopback name")
    address = numeric_address(host)
    if address is None:
        return host  # a DNS name: its addresses are checked before connecting
    if not is_public(address):
        spelled = host if address == host else f"{host} ({address})"
        raise CallbackRefused(f"address {spelled} is private, loopback or link-local")
    return host


def host_key(url: str) -> str:
    """The callback's host as the per-host cap counts it: one key for every spelling of an
    address (``0x08080808`` and ``8.8.8.8``) and of a name (``Example.com.``, ``example.com``)."""
    host = check_syntax(url)[1].lower().rstrip(".")
    return numeric_address(host) or host


def resolve(host: str, port: int, allow_private: bool) -> str:
    """One address of ``host`` to connect to; every address must be public unless ``allow_private``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # UnicodeError: the IDNA codec refuses the name (an empty label)
        raise CallbackRefused(f"host {host} does not resolve: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        bad = [a for a in addresses if not is_public(a)]
        if bad:
            raise CallbackRefused(f"host {host} resolves to non-public address {bad[0]}")
    return addresses[0]


class _Deadline:
    """Socket methods that give each blocking call only the time left until ``deadline``
    (``time.monotonic()`` seconds), so the whole exchange is bounded, not each read."""

    deadline = float("inf")

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the callback did not answer within the request's deadline")
        self.settimeout(left)  # type: ignore[attr-defined]

    def recv_into(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._arm()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc]

    def recv(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._arm()
        return super().recv(*args, **kwargs)  # type: ignore[misc]

    def send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._arm()
        return super().send(*args, **kwargs)  # type: ignore[misc]

    def sendall(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._arm()
        return super().sendall(*args, **kwargs)  # type: ignore[misc]


class _DeadlineSocket(_Deadline, socket.socket):
    pass


class _DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    pass


def _connect(scheme: str, host: str, address: str, port: int, deadline: float) -> socket.socket:
    """A connected (and for https, TLS-verified for ``host``) socket to ``address``, bounded by ``deadline``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = _DeadlineSocket(family, socket.SOCK_STREAM)
    try:
        sock.deadline = deadline
        sock._arm()
        sock.connect((address, port))
        if scheme != "https":
            return sock
        context = ssl.create_default_context()
        context.sslsocket_class = _DeadlineSSLSocket
        sock._arm()  # the handshake runs under this timeout as one deadline (CPython's _ssl)
        tls = cast(_DeadlineSSLSocket, context.wrap_socket(sock, server_hostname=host))
        tls.deadline = deadline
        return tls
    except BaseException:
        sock.close()
        raise


def request(method: str, url: str, *, allow_private: bool, timeout: float, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> Answer:
    """One request to ``url`` at the address checked for it, all of it (connect, TLS, send,
    status line, headers, the first ``MAX_READ`` body bytes) within ``timeout`` seconds.
    Raises ``CallbackRefused`` for a URL that may not be requested, ``OSError`` (``TimeoutError``
    past the deadline) for network failures and malformed answers."""
    deadline = time.monotonic() + timeout
    scheme, host, port = check_syntax(url)
    address = resolve(host, port, allow_private)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")
    conn = http.client.HTTPConnection(host, port)
    try:
        conn.sock = _connect(scheme, host, address, port, deadline)  # a set socket: no connect() of its own
        conn.request(method, target, body=body, headers={**(headers or {}), "Host": host_header,
                                                         "User-Agent": "topicfeed-websub", "Connection": "close"})
        resp = conn.getresponse()
        return Answer(resp.status, resp.read(MAX_READ))
    except http.client.HTTPException as exc:  # a malformed status line or headers: the callback's fault
        raise ConnectionError(f"bad HTTP answer: {type(exc).__name__}: {str(exc)[:80]}") from None
    finally:
        conn.close()
