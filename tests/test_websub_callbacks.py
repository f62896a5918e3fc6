"""Callback spellings refused at subscribe time, and the lease the hub grants (WebSub §5.1/§5.3).

The spellings are generated from a table of non-public addresses: every way the system resolver
reads a numeric host (decimal, hex, octal, short forms), trailing dots, and IPv6 forms that
reach the same place. Each must be refused by ``/websub`` with the same one-line error as the
canonical spelling, before any request or DNS lookup; public addresses in the same spellings
still pass (the check reads the host, it does not refuse odd spellings wholesale)."""
from __future__ import annotations

import ipaddress
import socket

import pytest

from server import create_app, get_store
from server.websub_http import CallbackRefused, check_literal
from server.websub_worker import Hub

from .websub_subscriber import Subscriber

BASE = "http://feeds.test"
TOPIC = f"{BASE}/feeds/all.atom"
NON_PUBLIC = ["127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.5.4", "192.168.0.1", "169.254.169.254", "0.0.0.0",
              "100.64.0.1"]
PUBLIC = ["8.8.8.8", "93.184.215.14"]


def ipv4_spellings(address: str) -> list[str]:
    """Spellings ``inet_aton`` (and so ``getaddrinfo``) reads as ``address``."""
    a, b, c, d = (int(x) for x in address.split("."))
    n = int(ipaddress.IPv4Address(address))
    return [
        str(n),                                   # one decimal number
        hex(n),                                   # one hex number
        "0" + oct(n)[2:],                         # one octal number
        f"{a}.{(b << 16) | (c << 8) | d}",        # a.b (24-bit tail)
        f"{a}.{b}.{(c << 8) | d}",                # a.b.c (16-bit tail)
        ".".join(f"0x{x:x}" for x in (a, b, c, d)),  # dotted hex
        ".".join(f"0{x:o}" for x in (a, b, c, d)),   # dotted octal
        f"0x{a:X}.{b}.0{c:o}.{d}",                # mixed bases
    ]


def ipv6_spellings(address: str) -> list[str]:
    """IPv6 hosts (bracketed in a URL) that carry ``address``: v4-mapped (two notations), NAT64."""
    v4 = ipaddress.IPv4Address(address)
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    return [f"::ffff:{address}", mapped.exploded, f"::FFFF:{int(v4) >> 16:x}:{int(v4) & 0xFFFF:x}",
            f"64:ff9b::{address}"]


def url_for(host: str) -> str:
    return f"http://[{host}]:8080/cb" if ":" in host else f"http://{host}:8080/cb"


GENERATED = [(spelling, address) for address in NON_PUBLIC
             for spelling in ipv4_spellings(address) + [address + ".", address + ".."]
             + ipv6_spellings(address)]
LOOPBACK_V6 = ["::1", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001", "::0:1", "fe80::1", "fe80::1%25eth0",
               "fc00::7", "fec0::1", "::", "::127.0.0.1", "2002:7f00:1::1"]
NAMES = ["localhost", "localhost.", "LOCALHOST", "LocalHost..", "api.localhost", "api.localhost."]
SHORT_FORMS = ["127.1", "0x7f000001", "0", "0x0", "00", "0x7f.1", "127.0.1", "0177.1", "2130706433"]


def test_the_generated_spellings_are_real():
    """Each numeric spelling without a trailing dot reaches its address through the resolver
    itself (numeric only, no DNS), so the table tests what a connection would do."""
    for spelling, address in GENERATED:
        if spelling.endswith("."):
            continue
        got = socket.getaddrinfo(spelling, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)[0][4][0]
        assert ipaddress.ip_address(got) in (ipaddress.ip_address(address),
                                             ipaddress.IPv6Address(f"::ffff:{address}"),
                                             ipaddress.IPv6Address(f"64:ff9b::{address}")), spelling


@pytest.mark.parametrize("host", [s for s, _ in GENERATED] + LOOPBACK_V6 + NAMES + SHORT_FORMS)
def test_non_public_spellings_are_refused_without_dns(host):
    with pytest.raises(CallbackRefused, match="private, loopback or link-local|loopback name"):
        check_literal(url_for(host), allow_private=False)
    assert check_literal(url_for(host), allow_private=True)  # the setting lets them all through


@pytest.mark.parametrize("host", [s for a in PUBLIC for s in ipv4_spellings(a) + [a + "."] + [f"::ffff:{a}"]]
                         + ["2606:4700:4700::1111", "example.com", "example.com.", "localhost.example.com"])
def test_public_spellings_pass(host):
    assert check_literal(url_for(host), allow_private=False) == host.lower().rstrip(".")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app({"PUBLIC_BASE_URL": BASE}, tmp_path_factory.mktemp("i"))
    return app.test_client()


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "0", "localhost.", "::1", "0:0:0:0:0:0:0:1",
                                  "::ffff:127.0.0.1", "017700000001", "169.254.169.254.", "10.1"])
def test_subscribe_refuses_them_like_127_0_0_1(client, host):
    resp = client.post("/websub", data={"hub.mode": "subscribe", "hub.callback": url_for(host), "hub.topic": TOPIC})
    body = resp.data.decode()
    assert resp.status_code == 400 and body.count("\n") == 1, body
    assert body.startswith("hub.callback") and ("private, loopback or link-local" in body or "loopback name" in body)
    canonical = client.post("/websub", data={"hub.mode": "subscribe", "hub.callback": "http://127.0.0.1:8080/cb",
                                             "hub.topic": TOPIC})
    assert canonical.status_code == 400 and "private, loopback or link-local" in canonical.data.decode()


# the lease -----------------------------------------------------------------------------------

@pytest.fixture
def subscriber():
    sub = Subscriber()
    yield sub
    sub.close()


@pytest.mark.parametrize("hint, granted", [
    pytest.param("9" * 40, 2592000, id="40-digits"),  # far past the maximum: cut to it, not refused
    pytest.param("9" * 5000, 2592000, id="5000-digits"),  # past int()'s digit limit too
    pytest.param("2592001", 2592000, id="max+1"),
    pytest.param("0007200", 7200, id="leading-zeros"),
    pytest.param("1", 3600, id="under-min"),  # raised to the minimum
    pytest.param("", 864000, id="none"),  # no hint: the default
])
def test_the_hub_grants_a_bounded_lease_and_reports_it(tmp_path, subscriber, hint, granted):
    app = create_app({"PUBLIC_BASE_URL": BASE, "WEBSUB_ALLOW_PRIVATE": True}, tmp_path / "i")
    form = {"hub.mode": "subscribe", "hub.callback": subscriber.url("/cb"), "hub.topic": TOPIC}
    if hint:
        form["hub.lease_seconds"] = hint
    assert app.test_client().post("/websub", data=form).status_code == 202
    Hub(app).drain()  # the worker's verification of intent, in this process
    [verify] = subscriber.of("GET", "/cb", "subscribe")
    assert verify.params["hub.lease_seconds"] == str(granted)
    [sub] = get_store(app).websub.subscriptions()
    assert sub.lease_seconds == granted


def test_the_per_host_cap_counts_every_spelling_of_an_address_as_one_host(tmp_path, subscriber):
    app = create_app({"PUBLIC_BASE_URL": BASE, "WEBSUB_ALLOW_PRIVATE": True, "WEBSUB_MAX_PER_HOST": 1}, tmp_path / "i")
    client = app.test_client()
    for host in ("127.0.0.1", "127.1", "0x7f000001"):  # one host, three spellings
        callback = subscriber.url("/cb").replace("127.0.0.1", host)
        assert client.post("/websub", data={"hub.mode": "subscribe", "hub.callback": callback,
                                            "hub.topic": TOPIC}).status_code == 202
    Hub(app).drain()
    assert len(subscriber.of("GET", "/cb", "subscribe")) == 3  # each was verified (each reached the subscriber)
    assert len(get_store(app).websub.subscriptions()) == 1
    denied = subscriber.of("GET", "/cb", "denied")
    assert len(denied) == 2 and all("callback host 127.0.0.1 (at most 1)" in d.params["hub.reason"] for d in denied)
