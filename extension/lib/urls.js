// URL normalisation and lookup hashes, identical to feeds/urlnorm.py (shared test vectors and a
// differential test, tests/test_urls_differential.py). Both sides parse with the WHATWG URL
// Standard: hosts are mapped with UTS #46 non-transitional processing (faß.de -> xn--fa-hia.de).

const TRACKING = new Set(["fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "yclid",
  "igshid", "_hsenc", "_hsmi", "mkt_tok", "ref_src", "ocid", "cmpid", "smid", "source"]);
const AMP_CACHE = /^[a-z0-9-]+\.cdn\.ampproject\.org$/;
const AMP_INNER_HOST = /^[a-z0-9.-]+$/; // the cache wraps DNS names only (IDNs as punycode)
// Parsers disagree on a few characters they leave raw ('^' in paths: Chromium and Node 20 keep
// it, Firefox and newer Ada escape it); escaping all but RFC 3986 unreserved and sub-delims
// (plus ':@/?%') after parsing makes every browser agree with feeds/urlnorm.py.
const NOT_CANONICAL = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/gu;
const escape = (text) => text.replace(NOT_CANONICAL, (c) => encodeURIComponent(c).replace(/%[0-9a-f]{2}/g, (e) => e.toUpperCase()));

function isTracking(name) {
  const lower = name.toLowerCase();
  return lower.startsWith("utm_") || TRACKING.has(lower);
}

function unwrapAmpCache(host, path) {
  if (!AMP_CACHE.test(host)) return null;
  const segments = path.split("/");
  if (segments.length > 2 && ["c", "v", "i"].includes(segments[1])) {
    const rest = segments[2] === "s" ? segments.slice(3) : segments.slice(2);
    const inner = rest.length ? rest[0].toLowerCase().split(":")[0] : "";
    if (AMP_INNER_HOST.test(inner)) return [inner, "/" + rest.slice(1).join("/")];
  }
  return null;
}

/** `host + path [+ "?" + query]`; throws for anything but absolute http(s) URLs. */
export function normalizeUrl(input) {
  // No trim(): the URL parser strips C0 controls and spaces itself, exactly as ada_url does in Python.
  const url = new URL(String(input));
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`not an http(s) URL: ${input}`);
  let host = url.hostname.replace(/\.+$/, "");
  if (!host) throw new TypeError(`not a valid host: ${input}`);
  let path = url.pathname || "/";
  const unwrapped = unwrapAmpCache(host, path);
  if (unwrapped) [host, path] = unwrapped;
  else if (url.port) host = `${host}:${url.port}`;
  if (host.startsWith("www.")) host = host.slice(4);
  if (path.length > 1) path = path.replace(/\/+$/, "") || "/";
  const query = url.search.slice(1).split("&").filter((p) => p && !isTracking(p.split("=")[0])).map(escape);
  query.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return host + escape(path) + (query.length ? "?" + query.join("&") : "");
}

/** Lower-case hex SHA-256 of the normalised form. */
export async function urlHash(normalized) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(normalized));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The prefix sent to the server: the server never sees the URL, only these hex characters. */
export const PREFIX_LENGTH = 8;

/** Articles of a lookup answer whose full URL hashes include the page's hash. */
export function matchLookup(value, pageHash) {
  return (Array.isArray(value) ? value : []).filter((a) => Array.isArray(a.urlHashes) && a.urlHashes.includes(pageHash));
}
