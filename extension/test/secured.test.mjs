// The JavaScript verifier against vectors written by the Python signer (tests/vectors/generate.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { canonicalJson, verifyObject, verifyTree } from "../lib/secured.js";

const vectors = JSON.parse(readFileSync(new URL("./vectors/secured.json", import.meta.url), "utf8"));
const opts = { now: vectors.now, maxAge: vectors.maxAge };

test("canonical JSON matches Python's byte for byte", () => {
  assert.equal(canonicalJson(vectors.canonical.object), vectors.canonical.json);
});

for (const c of vectors.cases) {
  test(`vector: ${c.name}`, async () => {
    const result = await verifyTree(c.object, vectors.secret, opts);
    assert.equal(result.ok, c.valid, JSON.stringify(result));
    if (c.reason) assert.equal(result.reason, c.reason);
    if (c.validWith) assert.equal((await verifyObject(c.object, c.validWith, opts)).ok, true);
  });
}

test("expired signatures are rejected", async () => {
  const c = vectors.cases[0];
  const r = await verifyObject(c.object, vectors.secret, { now: vectors.signedAt + vectors.maxAge + 1, maxAge: vectors.maxAge });
  assert.deepEqual(r, { ok: false, reason: "signature expired" });
});

test("every single-character change of a signed object is rejected", async () => {
  const c = vectors.cases.find((x) => x.name === "related item");
  const text = JSON.stringify(c.object);
  let checked = 0;
  for (let i = 0; i < text.length; i += 7) {
    const ch = text[i];
    const replacement = ch === "a" ? "b" : "a";
    let mutated;
    try {
      mutated = JSON.parse(text.slice(0, i) + replacement + text.slice(i + 1));
    } catch {
      continue; // not JSON any more: a client would drop it before verifying
    }
    if (JSON.stringify(mutated) === text) continue;
    const r = await verifyObject(mutated, vectors.secret, opts);
    assert.equal(r.ok, false, `change at ${i} went unnoticed`);
    checked++;
  }
  assert.ok(checked > 50);
});

test("floats are refused, not silently signed", async () => {
  const r = await verifyObject({ x: 1.5, secured: vectors.cases[0].object.secured }, vectors.secret, opts);
  assert.equal(r.ok, false);
});
