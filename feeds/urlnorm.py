"""URL normalisation and lookup hashes (the contract shared with the extension's lib/urls.js).

URLs are parsed by the WHATWG URL Standard (https://url.spec.whatwg.org/) through ``ada_url``,
a binding of Ada, the parser Node.js itself uses: hosts are mapped with UTS #46
non-transitional processing as browsers do (``faß.de`` -> ``xn--fa-hia.de``, not IDNA 2003's
``fass.de``), paths and queries are percent-encoded exactly as ``new URL()`` does, and a bad
port or host is a ``ValueError``, never another exception. Ada checks UTS #46's bidi rule per
label; ``idna`` completes it for the whole domain as Chromium does. The extension normalises
with the browser's own ``URL``, so both sides produce the same bytes
(tests/test_urls_differential.py compares them in Chromium and Node.js).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from urllib.parse import quote

import idna
from ada_url import parse_url

_PARTS = ("protocol", "hostname", "port", "pathname", "search")  # what normalisation reads of a parsed URL

# Parameters that identify a campaign or a click, never the article. ``source`` is Medium's
# (the corpus files one story twice, once with ``?source=topic_page…``).
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "yclid",
     "igshid", "_hsenc", "_hsmi", "mkt_tok", "ref_src", "ocid", "cmpid", "smid", "source"}
)
_AMP_CACHE = re.compile(r"^[a-z0-9-]+\.cdn\.ampproject\.org$")
_AMP_INNER_HOST = re.compile(r"^[a-z0-9.-]+$")  # the cache wraps DNS names only (IDNs as punycode)
_C0_OR_SPACE = "".join(map(chr, range(0x21)))  # stripped from both ends of a URL (WHATWG)
_TAB_OR_NEWLINE = re.compile("[\t\n\r]")  # removed from anywhere in a URL (WHATWG)
_AUTHORITY_END = re.compile(r"[/\\?#]")  # ends a special URL's authority (WHATWG authority state)
# Parsers disagree on a few characters they leave raw in paths and queries (ada 3 and Firefox
# escape '^' in paths, Chromium and Node 20 do not). Escaping everything outside RFC 3986's
# unreserved and sub-delims (plus ':@/?%') after parsing makes every parser's output agree.
_NOT_CANONICAL = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]")


def _is_tracking(name: str) -> bool:
    lower = name.lower()
    return lower.startswith("utm_") or lower in TRACKING_PARAMS


def _unwrap_amp_cache(host: str, path: str) -> tuple[str, str] | None:
    """``x.cdn.ampproject.org/c/s/www.site.com/a`` -> (``www.site.com``, ``/a``)."""
    if not _AMP_CACHE.match(host):
        return None
    segments = path.split("/")
    # /c/s/host/path (https) or /c/host/path (http); also /v/ and /i/ prefixes for viewer/images
    if len(segments) > 2 and segments[1] in ("c", "v", "i"):
        rest = segments[3:] if segments[2] == "s" else segments[2:]
        inner = rest[0].lower().split(":")[0] if rest else ""
        if _AMP_INNER_HOST.match(inner):
            return inner, "/" + "/".join(rest[1:])
    return None


def _is_bidi_valid(host: str) -> bool:
    """UTS #46 CheckBidi applies RFC 5893's rules to *every* label of a domain that has a
    right-to-left label (``ﻣ.0.com`` is invalid: ``0`` cannot start a label there). Ada checks
    each label alone; Chromium checks the whole domain, so this completes Ada's check."""
    if "xn--" not in host:
        return True  # no right-to-left label without punycode
    labels = [_decoded(label) for label in host.split(".") if label]
    if not any(_has_rtl(label) for label in labels):
        return True
    try:
        return all(idna.core.check_bidi(label, check_ltr=True) for label in labels)
    except idna.IDNAError:
        return False


def _written_as_unicode(url: str) -> bool:
    """Whether the host as written had non-ASCII characters or ``%`` escapes. Chromium runs the
    domain-wide bidi check only then: a host already written in punycode is taken as it is.

    The host is found as the WHATWG URL Standard finds it for a special scheme (http, https;
    https://url.spec.whatwg.org/#concept-basic-url-parser): tabs and newlines removed, any run of
    ``/`` or ``\\`` after the scheme skipped (``https:/host`` and ``https:\\\\host`` name a host), the
    authority ending at the first ``/``, ``\\``, ``?`` or ``#``, user info ending at its last ``@``."""
    text = _TAB_OR_NEWLINE.sub("", url.strip(_C0_OR_SPACE))
    rest = text.split(":", 1)[-1].lstrip("/\\")
    host = _AUTHORITY_END.split(rest, 1)[0].rsplit("@", 1)[-1]
    return not host.isascii() or "%" in host


def _decoded(label: str) -> str:
    """A label's Unicode form; one that is not valid punycode (browsers keep ``xn--zz``) as is."""
    if not label.startswith("xn--"):
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return label


def _has_rtl(label: str) -> bool:
    return any(unicodedata.bidirectional(c) in ("R", "AL", "AN") for c in label)


def _escape(text: str) -> str:
    return _NOT_CANONICAL.sub(lambda m: quote(m.group(), safe=""), text)


def normalize_url(url: str) -> str:
    """``host + path [+ "?" + query]``: no scheme, no ``www.``, no default port, no trailing
    slash or dot, no fragment, no tracking parameters, remaining parameters sorted.

    The result is ASCII: the host is UTS #46-mapped (punycode), path and query are
    percent-encoded as the WHATWG URL parser leaves them. Raises ``ValueError`` for anything
    that is not an absolute http(s) URL the WHATWG parser accepts (bad port, bad host, …).
    """
    if not isinstance(url, str):
        raise ValueError(f"not a URL: {url!r}")
    return _normalize(url)


@lru_cache(maxsize=4096)
def _normalize(url: str) -> str:
    # Cached: an import normalises each record's URLs several times (validation, the link,
    # lookup hashes, curated related items), and curated URLs recur across records. Errors
    # are not cached (lru_cache keeps results only), so a bad URL raises every time.
    try:
        parts = parse_url(url, _PARTS)  # strips leading/trailing C0 controls and spaces, as browsers do
    except ValueError:
        raise ValueError(f"not a valid URL: {url[:200]!r}") from None
    if parts["protocol"] not in ("http:", "https:") or not parts["hostname"]:
        raise ValueError(f"not an http(s) URL: {url[:200]!r}")
    host = parts["hostname"].rstrip(".")
    # the bidi check first: it returns at once for a host without punycode (nearly every
    # host), while the written-form check re-splits the URL
    if not host or not _is_bidi_valid(host) and _written_as_unicode(url):
        raise ValueError(f"not a valid host: {url[:200]!r}")
    path = parts["pathname"] or "/"
    unwrapped = _unwrap_amp_cache(host, path)
    if unwrapped:
        host, path = unwrapped
    elif parts["port"]:  # empty for the scheme's default port
        host = f"{host}:{parts['port']}"
    if host.startswith("www."):
        host = host[4:]
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    # Query pieces stay as the parser encoded them and are sorted as (ASCII) strings, so the
    # JavaScript side reproduces the same bytes without a URL-encoding library.
    query = sorted(_escape(piece) for piece in parts["search"][1:].split("&")
                   if piece and not _is_tracking(piece.split("=")[0]))
    return host + _escape(path) + ("?" + "&".join(query) if query else "")


def is_http_url(value: object) -> bool:
    """True for absolute http(s) URLs with a host that ``normalize_url`` accepts: the only
    links topicfeed stores as links and renders."""
    if not isinstance(value, str):
        return False
    try:
        normalize_url(value)
    except ValueError:
        return False
    return True


def url_hash(normalized: str) -> str:
    """Lower-case hex SHA-256 of the normalised form (what lookups match on)."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()
