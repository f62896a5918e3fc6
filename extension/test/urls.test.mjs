// URL normalisation and hashes against vectors written by feeds/urls.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { PREFIX_LENGTH, matchLookup, normalizeUrl, urlHash } from "../lib/urls.js";

const vectors = JSON.parse(readFileSync(new URL("./vectors/urls.json", import.meta.url), "utf8"));

for (const v of vectors.valid) {
  test(`normalises ${v.input}`, async () => {
    assert.equal(normalizeUrl(v.input), v.normalized);
    assert.equal(await urlHash(v.normalized), v.sha256);
  });
}

for (const bad of vectors.invalid) {
  test(`refuses ${bad}`, () => {
    assert.throws(() => normalizeUrl(bad));
  });
}

test("lookup matching is local: only full-hash matches count", async () => {
  const hash = vectors.valid[0].sha256;
  const value = [{ id: "a", urlHashes: [hash] }, { id: "b", urlHashes: [hash.slice(0, PREFIX_LENGTH) + "0".repeat(56)] }, { id: "c" }];
  assert.deepEqual(matchLookup(value, hash).map((a) => a.id), ["a"]);
  assert.deepEqual(matchLookup(null, hash), []);
});
