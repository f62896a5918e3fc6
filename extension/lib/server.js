// The only code that talks to the topicfeed server. Every answer is verified with the
// client's secret before it is cached or passed on; unverified data is dropped.

import { verifyTree } from "./secured.js";

export const CACHE_SECONDS = 300;
export const SIGNATURE_MAX_AGE = 86400;
const CLOCK_SKEW = 300;
// A server that accepts the connection and then hangs would otherwise leave the tab "checking…"
// until the browser gives up minutes later; the lookup is one small JSON answer.
export const REQUEST_TIMEOUT_MS = 10000;

export class ServerError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind; // "unreachable" | "rejected" | "http" | "unverified"
  }
}

/** GET a path from the paired server and verify every `secured` field in the answer. */
export async function fetchVerified(pairing, path) {
  const tooSlow = () => new ServerError("unreachable",
    `the server at ${pairing.server} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
  let resp;
  try {
    resp = await fetch(pairing.server + path, {
      headers: { Authorization: `Bearer ${pairing.token}`, Accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), // covers reading the body too
    });
  } catch (err) {
    if (err.name === "TimeoutError") throw tooSlow();
    throw new ServerError("unreachable", `server unreachable at ${pairing.server} (${err.message})`);
  }
  if (resp.status === 401) {
    await forgetLookups(); // answers verified before a revoke must not outlive it
    throw new ServerError("rejected", "the server rejected this extension's token: pair again");
  }
  if (!resp.ok) throw new ServerError("http", `the server answered ${resp.status} for ${path.split("?")[0]}`);
  let body;
  try {
    body = await resp.json();
  } catch (err) {
    if (err.name === "TimeoutError") throw tooSlow();
    throw new ServerError("unverified", "the server's answer is not JSON");
  }
  const check = await verifyTree(body, pairing.secret, { maxAge: SIGNATURE_MAX_AGE, skew: CLOCK_SKEW });
  if (!check.ok) throw new ServerError("unverified", `verification failed: ${check.reason}`);
  return body;
}

/** Drop every cached lookup answer (on 401, unpair and re-pair). */
export async function forgetLookups() {
  const keys = Object.keys(await chrome.storage.session.get(null)).filter((k) => k.startsWith("lookup:"));
  await chrome.storage.session.remove(keys);
}

/**
 * Lookup by hash prefix, cached briefly in chrome.storage.session (verified answers only).
 * The key names the client too: an answer signed for one pairing never serves another.
 */
export async function lookupPrefix(pairing, prefix) {
  const key = `lookup:${pairing.server}:${pairing.client}:${prefix}`;
  const cached = (await chrome.storage.session.get(key))[key];
  if (cached && Date.now() / 1000 - cached.at < CACHE_SECONDS) return cached.body;
  const body = await fetchVerified(pairing, `/api/v1/lookup?prefix=${prefix}`);
  await chrome.storage.session.set({ [key]: { at: Date.now() / 1000, body } });
  return body;
}
