// Verification of topicfeed's `secured` field (the JavaScript half of the contract in
// DESIGN.md; the Python half is server/signing.py). Pure module: WebCrypto only, so it
// runs in the service worker and under `node --test` alike.

export const SALT = "topicfeed.secured.v1";
const encoder = new TextEncoder();

function compareCodePoints(a, b) {
  // Python sorts keys by code point; JS's default sort uses UTF-16 code units.
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function canonicalValue(value, path) {
  if (value === null || typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError(`signed objects hold only integers: ${path} = ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map((v, i) => canonicalValue(v, `${path}[${i}]`)).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort(compareCodePoints);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalValue(value[k], `${path}.${k}`)}`).join(",")}}`;
  }
  throw new TypeError(`unsupported value at ${path}`);
}

/** The canonical JSON text of an object without its own `secured` key. */
export function canonicalJson(obj) {
  const body = {};
  for (const [k, v] of Object.entries(obj)) if (k !== "secured") body[k] = v;
  return canonicalValue(body, "$");
}

export function base64UrlEncode(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function base64UrlDecode(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const raw = atob(padded);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function hmacKey(keyBytes) {
  return crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** base64url(SHA-256(canonical JSON)), unpadded. */
export async function objectDigest(obj) {
  return base64UrlEncode(await crypto.subtle.digest("SHA-256", encoder.encode(canonicalJson(obj))));
}

/** itsdangerous' "hmac" key derivation: HMAC-SHA256(secret, salt). */
export async function deriveKey(secret, salt = SALT) {
  const raw = await crypto.subtle.sign("HMAC", await hmacKey(encoder.encode(secret)), encoder.encode(salt));
  return hmacKey(raw);
}

function timestampValue(text) {
  let n = 0;
  for (const b of base64UrlDecode(text)) n = n * 256 + b;
  return n;
}

/**
 * Check one object's `secured` field. Returns {ok: true, timestamp} or {ok: false, reason}.
 * Options: maxAge (seconds), now (Unix seconds, for tests), skew (allowed future seconds).
 */
export async function verifyObject(obj, secret, { maxAge = null, now = Date.now() / 1000, skew = 0 } = {}) {
  const token = obj && obj.secured;
  if (typeof token !== "string") return { ok: false, reason: "missing secured field" };
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "malformed secured field" };
  const [digest, stamp, signature] = parts;
  let sigBytes, timestamp;
  try {
    sigBytes = base64UrlDecode(signature);
    timestamp = timestampValue(stamp);
  } catch {
    return { ok: false, reason: "malformed secured field" };
  }
  const key = await deriveKey(secret);
  const valid = await crypto.subtle.verify("HMAC", key, sigBytes, encoder.encode(`${digest}.${stamp}`));
  if (!valid) return { ok: false, reason: "bad signature" };
  let computed;
  try {
    computed = await objectDigest(obj);
  } catch (err) {
    return { ok: false, reason: String(err.message || err) };
  }
  if (computed !== digest) return { ok: false, reason: "content does not match its signature" };
  if (timestamp > now + skew) return { ok: false, reason: "signed in the future" };
  if (maxAge !== null && now - timestamp > maxAge) return { ok: false, reason: "signature expired" };
  return { ok: true, timestamp };
}

/** Verify every object carrying `secured` in a response, innermost first; any failure fails all. */
export async function verifyTree(value, secret, options = {}) {
  if (Array.isArray(value)) {
    for (const item of value) {
      const r = await verifyTree(item, secret, options);
      if (!r.ok) return r;
    }
    return { ok: true };
  }
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "secured") continue;
      const r = await verifyTree(v, secret, options);
      if (!r.ok) return r;
    }
    if ("secured" in value) return verifyObject(value, secret, options);
  }
  return { ok: true };
}
