"""Write the shared test vectors from the real Python code; the JavaScript tests check them.

Usage: python -m tests.vectors.generate   (writes extension/test/vectors/*.json)
tests/test_vectors.py fails when the committed files differ from what this produces.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from feeds.urlnorm import normalize_url, url_hash
from server.signing import SECURED_SALT, sign_object

OUT = Path(__file__).resolve().parents[2] / "extension" / "test" / "vectors"
SIGNED_AT = 1_795_000_000  # fixed, so the files are reproducible
SECRET = "vector-secret-Ω-0123456789abcdef0123456789abcdef"
OLD_SECRET = "an-older-master-key-0123456789abcdef0123456789abcdef"

TRICKY = {
    "ascii": "plain",
    "non_ascii": "Le Lézard — naïve café",
    "emoji": "robots 🤖 and flags 🇪🇺",
    "quotes": 'she said "hi" and \'bye\'',
    "backslash": "C:\\path\\to\\file and \\u0041 literally",
    "control": "tab\tnewline\ncarriage\rbell\u0007nul\u0000",
    "separators": "line\u2028paragraph\u2029end",
    "slash": "</script><script>alert(1)</script>",
    "zero_width": "zero\u200bwidth",
    "big_int": 9007199254740991,
    "negative": -1,
    "flags": [True, False, None],
    "nested": {"b": [1, {"z": "last", "a": "first"}], "a": {}},
    "keys": {"é": 1, "e": 2, "E": 3, "ü": 4, "z": 5, "\U0001f600": 6, "\uff5e": 7},
}
URLS = [
    "https://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.html",
    "https://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.html?utm_source=x&utm_medium=rss#top",
    "http://WWW.InfoWorld.com:80/article/3667433/open-source-isnt-working-for-ai.html/",
    "https://infoworld.com:443/article/3667433/open-source-isnt-working-for-ai.html?fbclid=abc",
    "https://www-infoworld-com.cdn.ampproject.org/c/s/www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.amp.html",
    "https://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.amp.html",
    "https://medium.com/trueface-ai/computer-vision-and-the-ccpa-what-you-need-to-know-928477de0601?source=topic_page---------2------------------1",
    "https://youtube.com/watch?v=sSUCyps_1O4&feature=share&gclid=1",
    "https://www.example.com/search?b=2&a=1&a=0&mc_cid=9&mc_eid=8",
    "https://example.com/",
    "https://example.com",
    "https://example.com:8443/path/",
    "https://example.com/a%20b/c",
    "https://example.com/caf\u00e9/na\u00efve",
    "https://example.com/p?q=caf\u00e9&x=a%20b",
    "https://b\u00fccher.example/x",
    "http://example.com/a/b/?utm_campaign=1&z=&y",
    "https://example.com/?",
    "https://www-theverge-com.cdn.ampproject.org/c/www.theverge.com/2020/1/1/story/amp",
    "https://www-example-com.cdn.ampproject.org/c/s/0.com/../|",  # not a wrapped DNS name: kept as the cache URL
    # Internationalised hosts: UTS #46 non-transitional, as browsers map them (IDNA 2003 gave fass.de).
    "https://fa\u00df.de/stra\u00dfe",
    "https://FA\u00df.DE/",
    "https://xn--fa-hia.de/stra%C3%9Fe",
    "https://www.\u03c3\u03bf\u03bb\u03bf\u03c2.gr/",
    "https://\u0DC1\u0DCA\u200D\u0DBB\u0DD3.lk/",
    "https://\u0646\u0627\u0645\u0647\u200C\u0627\u06CC.com/",
    "https://B\u00DCCHER.example/",
    "https://xn--bcher-kva.example/",
    "https://\u4f8b\u3048.\u30c6\u30b9\u30c8/\u30d1\u30b9?\u30af\u30a8\u30ea=1",
    "https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com/",
    "https://example.com./a",
    "https://EXAMPLE.com:8080/",
    "https://[2001:DB8::1]:8443/x",
    "http://192.168.0.1/x",
    "https://example.com/a b/\u00e9?q=a b&r=\u00e9",
]
BAD_URLS = ["javascript:alert(1)", "ftp://example.com/file", "mailto:a@example.com", "not a url", "/relative/path",
            "https://example.com:99999/", "https://example.com:abc/", "https://a\u200db.com/", "https://\u00ad/",
            "https://ex ample.com/"]


def _tampered(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    changed = copy.deepcopy(obj)
    changed["title"] = changed["title"] + "!"
    out.append(("title changed", changed))
    nested = copy.deepcopy(obj)
    nested["related"][0]["title"] = "Swapped title"
    out.append(("nested related title changed (inner signature now fails)", nested))
    stripped = copy.deepcopy(obj)
    stripped["related"] = []
    out.append(("related list emptied", stripped))
    reordered_sig = copy.deepcopy(obj)
    digest, stamp, sig = obj["secured"].split(".")
    reordered_sig["secured"] = f"{digest}.{stamp}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    out.append(("signature byte changed", reordered_sig))
    later = copy.deepcopy(obj)
    later["secured"] = f"{digest}.{'awnHxg' if stamp != 'awnHxg' else 'awnHxh'}.{sig}"
    out.append(("timestamp changed", later))
    return out


def secured_vectors() -> dict[str, Any]:
    related = sign_object({"title": "A related item", "link": "https://example.org/r", "extra": TRICKY}, SECRET, SIGNED_AT)
    article = sign_object({"id": "2024-01-01-x", "title": "Tricky strings", "fields": TRICKY, "related": [related]},
                          SECRET, SIGNED_AT)
    collection = sign_object({"title": "A collection", "value": [article], "nextPage": None, "page": 1}, SECRET, SIGNED_AT)
    old = sign_object({"id": "signed-with-old-key", "title": "Still valid until pruned"}, OLD_SECRET, SIGNED_AT)
    cases = [
        {"name": "collection with nested signed article and related item", "object": collection, "valid": True},
        {"name": "article", "object": article, "valid": True},
        {"name": "related item", "object": related, "valid": True},
    ]
    cases += [{"name": name, "object": obj, "valid": False} for name, obj in _tampered(article)]
    cases.append({"name": "signed with the older key of a rotation", "object": old, "valid": False,
                  "validWith": OLD_SECRET})
    cases.append({"name": "signed with another secret", "object": sign_object({"title": "x"}, "another-secret-" * 3, SIGNED_AT),
                  "valid": False})
    cases.append({"name": "future timestamp", "object": sign_object({"title": "x"}, SECRET, SIGNED_AT + 3600),
                  "valid": False, "reason": "signed in the future"})
    return {"salt": SECURED_SALT, "secret": SECRET, "olderSecret": OLD_SECRET, "signedAt": SIGNED_AT,
            "now": SIGNED_AT + 60, "maxAge": 86400, "canonical": {"object": article,
            "json": json.dumps({k: v for k, v in article.items() if k != "secured"}, sort_keys=True,
                               separators=(",", ":"), ensure_ascii=False)}, "cases": cases}


def url_vectors() -> dict[str, Any]:
    good = []
    for url in URLS:
        norm = normalize_url(url)
        good.append({"input": url, "normalized": norm, "sha256": url_hash(norm)})
    return {"valid": good, "invalid": BAD_URLS}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in (("secured.json", secured_vectors()), ("urls.json", url_vectors())):
        (OUT / name).write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
