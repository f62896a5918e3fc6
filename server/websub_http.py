"""Outbound HTTP for the WebSub hub, safe against server-side request forgery.

A callback URL is checked before any request: http or https, a host, and (unless private
targets are allowed) every address it resolves to is public. The connection then goes to the
address that was checked — resolved once, the ``Host`` header and TLS server name set from the
URL — so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are never followed (a 3xx is a failure), timeouts are short and response bodies are
read up to a bound. Only the hub's worker calls this, never a request thread.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

MAX_READ = 64 * 1024  # bytes of a response body read (a challenge echo is tiny)


class CallbackRefused(ValueError):
    """The URL may not be requested; the message says why (one line)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most MAX_READ bytes


def check_syntax(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL with a host; raises ``CallbackRefused``."""
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
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_public(address: str) -> bool:
    """A globally routable unicast address (not private, loopback, link-local, reserved…)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_literal(url: str, allow_private: bool) -> str:
    """Request-time check that needs no DNS: the syntax, and an IP literal or ``localhost`` host
    must be public unless ``allow_private``. Returns the lower-cased host; raises ``CallbackRefused``."""
    _, host, _ = check_syntax(url)
    host = host.lower()
    if allow_private:
        return host
    if host == "localhost" or host.endswith(".localhost"):
        raise CallbackRefused(f"host {host} is a loopback name")
    try:
        literal = not is_public(host)
    except ValueError:
        return host  # a DNS name: its addresses are checked before connecting
    if literal:
        raise CallbackRefused(f"address {host} is private, loopback or link-local")
    return host


def resolve(host: str, port: int, allow_private: bool) -> str:
    """One address of ``host`` to connect to; every address must be public unless ``allow_private``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CallbackRefused(f"host {host} does not resolve: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        bad = [a for a in addresses if not is_public(a)]
        if bad:
            raise CallbackRefused(f"host {host} resolves to non-public address {bad[0]}")
    return addresses[0]


def request(method: str, url: str, *, allow_private: bool, timeout: float, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> Answer:
    """One request to ``url`` at the address checked for it. Raises ``CallbackRefused`` for a URL
    that may not be requested, ``OSError``/``urllib3`` errors for network failures."""
    scheme, host, port = check_syntax(url)
    address = resolve(host, port, allow_private)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")
    options = {"timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False, "maxsize": 1}
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, server_hostname=host, assert_hostname=host, **options)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, **options)
    try:
        resp = pool.urlopen(method, target, body=body, headers={**(headers or {}), "Host": host_header,
                                                                  "User-Agent": "topicfeed-websub"},
                            redirect=False, assert_same_host=False, preload_content=False)
        try:
            data = resp.read(MAX_READ, decode_content=False)
        finally:
            resp.release_conn()
        return Answer(resp.status, data or b"")
    finally:
        pool.close()
