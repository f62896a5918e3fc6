"""A seeded HTTP fuzzer for topicfeed (used by tests/test_fuzz_http.py and bench/fuzz_bench.py).

Requests are built from the route families with hostile values in every slot: path segments,
query parameters (known names with out-of-range, non-ASCII and huge values, unknown names),
bearer tokens (none, forged, truncated, a client's, the admin's), validators, encodings and
write bodies (random JSON, deep nesting, wrong types, non-JSON). Loopback only.
"""
from __future__ import annotations

import http.client
import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SEGMENTS = ["ai", "robots", "nope", "", ".", "..", "%2e%2e", "a" * 300, "C%23", "C%2B%2B", "%00", "%ff", "%C2%B2",
            "ü", "%E2%80%AE", "x.atom", "all", "index.json", "faß.de", "xn--fa-hia.de", "example.org", "%0d%0a", "-1",
            "0", "99999999999999999999"]
PARAMS = ["limit", "min_quality", "min_heat", "type", "q", "page", "per_page", "prefix", "url", "feed", "ext",
          "utm_source", "x"]
VALUES = ["", "0", "1", "-1", "50", "200", "201", "9223372036854775808", "-9223372036854775809", "461168601842738792",
          "²", "١٢", "1e3", "0x10", " 5 ", "9" * 5000, "abc", "rust & c++", "%", "#frag", "日本語", "<script>",
          "javascript:alert(1)", "https://www.infoworld.com/article/3667433/x.html?utm_source=a", "topics/ai",
          "topics/../../etc", "providers/example.org", "all", "rss", "atom", "json", "xml", "deadbeef", "DEADBEEF00",
          "g" * 64, "0" * 65, "\x00", "a\r\nb"]
FORMATS = ["rss", "atom", "json", "xml", "opml", ""]


def _json_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([0, -1, 2**31, 2**63, -(2**64), 10**30])
    if kind == 1:
        return rng.choice(["", "x", "日本", "https://example.org/a", "javascript:x", "2024-02-30", "\u0000", "NO"])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.random() * 1e6
    if kind == 4:
        return "2024-0%d-0%dT10:00:00Z" % (rng.randint(1, 9), rng.randint(1, 9))
    if kind == 5:
        return "https://example.org/%d?utm_source=x#y" % rng.randrange(10**6)
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["title", "webUrl", "originalUrl", "publishedDateTime", "topics", "quality", "heat", "published",
            "images", "related", "provider", "type", "excerpt", "id", "1", ""]
    return {rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randrange(6))}


def write_body(rng: random.Random) -> bytes:
    choice = rng.randrange(8)
    if choice == 0:
        return b"[" * rng.choice([10, 1000, 100000])
    if choice == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if choice == 2:
        return b""
    body = {"title": "Fuzz %d" % rng.randrange(10**6), "webUrl": "https://example.org/fuzz/%d" % rng.randrange(10**6),
            "publishedDateTime": "2024-03-0%dT10:00:00Z" % rng.randint(1, 9), "topics": ["Robots"]}
    for _ in range(rng.randrange(4)):
        body[rng.choice(list(body) + ["quality", "heat", "published", "images", "id", "related"])] = _json_value(rng)
    return json.dumps(body, ensure_ascii=rng.random() < 0.5).encode()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def build_request(rng: random.Random, tokens: dict[str, str], article_ids: list[str]) -> Request:
    seg = lambda: quote(rng.choice(SEGMENTS), safe="%.")  # noqa: E731
    ext = rng.choice(FORMATS)
    templates = [
        f"/feeds/all.{ext}", f"/feeds/topics/{seg()}.{ext}", f"/feeds/providers/{seg()}.{ext}",
        f"/feeds/private/{seg()}.{ext}", "/feeds/index.opml", "/", "/healthz", f"/{seg()}",
        "/api/v1/topics", "/api/v1/providers", f"/api/v1/articles/{rng.choice(article_ids + [seg()])}",
        f"/api/v1/topics/{seg()}/articles", "/api/v1/lookup", "/api/v1/private-feed-url",
        f"/api/news/{seg()}/index.json", f"/api/news/{seg()}/page/{rng.choice(VALUES[:8])}/index.json",
        "/api/v1/articles", f"/api/v1/articles/{rng.choice(article_ids + [seg()])}",
    ]
    method = rng.choices(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"], [60, 8, 12, 10, 7, 3])[0]
    writing = method in ("POST", "PUT", "DELETE") and rng.random() < 0.7
    path = rng.choice(templates[-2:] if writing else templates)
    if rng.random() < (0.2 if writing else 0.7):
        pairs = [(rng.choice(PARAMS), rng.choice(VALUES)) for _ in range(rng.randrange(1, 4))]
        path += "?" + "&".join(quote(k) + "=" + quote(v, safe="" if rng.random() < 0.8 else "%&=+#?:/")
                               for k, v in pairs)
    headers: dict[str, str] = {}
    auth = "admin" if writing and rng.random() < 0.7 else rng.choice(["none", "client", "admin", "forged", "truncated", "basic"])
    if auth in tokens:
        headers["Authorization"] = f"Bearer {tokens[auth]}"
    elif auth == "forged":
        headers["Authorization"] = "Bearer " + rng.choice(["eyJhZG1pbiI6dHJ1ZX0.AAAA.BBBB", "x", "..", "a" * 500])
    elif auth == "truncated" and tokens:
        token = rng.choice(list(tokens.values()))
        headers["Authorization"] = f"Bearer {token[:rng.randrange(len(token))]}"
    elif auth == "basic":
        headers["Authorization"] = "Basic dXNlcjpwYXNz"
    if rng.random() < 0.2:
        headers["If-None-Match"] = rng.choice(['"x"', "*", "W/\"abc\"", '"' + "a" * 100])
    if rng.random() < 0.2:
        headers["If-Modified-Since"] = rng.choice(["Sat, 02 Mar 2024 08:00:00 GMT", "yesterday", "Sun, 31 Dec 9999 23:59:59 GMT"])
    if rng.random() < 0.3:
        headers["Accept-Encoding"] = rng.choice(["gzip", "gzip;q=0", "br", "*", "identity", "gzip, deflate"])
    body = write_body(rng) if method in ("POST", "PUT") else None
    if body is not None:
        headers["Content-Type"] = rng.choice(["application/json", "text/plain", "application/json; charset=latin-1"])
    return Request(method, path, headers, body)


def run(port: int, count: int, seed: int, tokens: dict[str, str], article_ids: list[str]) -> Counter:
    """Send ``count`` generated requests to ``127.0.0.1:port``; returns a Counter of statuses and
    keeps every 5xx request under the key ``("5xx", method, path)``."""
    rng = random.Random(seed)
    statuses: Counter = Counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(count):
        req = build_request(rng, tokens, article_ids)
        try:
            conn.request(req.method, req.path, body=req.body, headers=req.headers)
            resp = conn.getresponse()
            resp.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            statuses["connection dropped"] += 1
            continue
        statuses[resp.status] += 1
        if resp.status >= 500:
            statuses[("5xx", req.method, req.path[:200])] += 1
        if resp.will_close:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    return statuses


@dataclass
class Target:
    """An instance ready to be served and fuzzed: its folder, the tokens to send, the article ids."""

    instance: Path
    tokens: dict[str, str]
    article_ids: list[str]


def prepare_target(folder: Path, settings: str = "") -> Target:
    """A copy of the golden content imported into a new instance under ``folder`` (``settings``:
    extra config.toml lines), with an admin token and a paired client's token minted by the CLI."""
    from feeds.importer import sync
    from server import create_app, get_store
    from server.cli import main as cli

    from .test_golden import CONTENT

    content = folder / "site"
    shutil.copytree(CONTENT, content)
    instance = folder / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'content_dirs = ["{content}"]\n{settings}')
    app = create_app({}, instance)
    sync(get_store(app), [content])
    runner = app.test_cli_runner()
    admin = runner.invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    client = json.loads(runner.invoke(cli, ["clients", "add", "fuzz", "--server-url", "http://x", "--json",
                                            "--instance", str(instance)]).output)
    get_store(app).close()
    return Target(instance, {"client": client["token"], "admin": admin},
                  [p.stem for p in (content / "_news").glob("*.md")])
