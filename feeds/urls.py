"""URL normalisation and lookup hashes (the contract shared with the extension)."""
from __future__ import annotations

import hashlib
import re
from urllib.parse import quote, urlsplit

# Parameters that identify a campaign or a click, never the article. ``source`` is Medium's
# (the corpus files one story twice, once with ``?source=topic_page…``).
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "yclid",
     "igshid", "_hsenc", "_hsmi", "mkt_tok", "ref_src", "ocid", "cmpid", "smid", "source"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What a browser leaves unescaped in a path (WHATWG URL), so both sides agree byte for byte.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~[]|^"
_QUERY_SAFE = "/%:@!$&()*+,;=-._~[]|^`{}?\\"
_AMP_CACHE = re.compile(r"^[a-z0-9-]+\.cdn\.ampproject\.org$")


def is_http_url(value: object) -> bool:
    """True for absolute http(s) URLs with a host: the only links topicfeed renders."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


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
        if rest and rest[0]:
            return rest[0].lower(), "/" + "/".join(rest[1:])
    return None


def normalize_url(url: str) -> str:
    """``host + path [+ "?" + query]``: no scheme, no ``www.``, no default port, no trailing
    slash, no fragment, no tracking parameters, remaining parameters sorted.

    Raises ValueError for anything that is not an absolute http(s) URL.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname.lower().rstrip(".")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    path = parts.path or "/"
    unwrapped = _unwrap_amp_cache(host, path)
    if unwrapped:
        host, path = unwrapped
        host = host.split(":")[0]
    elif parts.port and parts.port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{parts.port}"
    if host.startswith("www."):
        host = host[4:]
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    # Query pieces stay as written (no decoding) and are sorted as strings, so the JavaScript
    # side reproduces the same bytes without a URL-encoding library.
    query = sorted(
        quote(piece, safe=_QUERY_SAFE) for piece in parts.query.split("&")
        if piece and not _is_tracking(piece.split("=")[0])
    )
    return host + quote(path, safe=_PATH_SAFE) + ("?" + "&".join(query) if query else "")


def url_hash(normalized: str) -> str:
    """Lower-case hex SHA-256 of the normalised form (what lookups match on)."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()
