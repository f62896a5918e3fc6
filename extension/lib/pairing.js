// The pairing string printed by `topicfeed clients add`: "topicfeed-pair-v1:" + base64url(JSON).

import { base64UrlDecode } from "./secured.js";

export const PAIRING_PREFIX = "topicfeed-pair-v1:";

/** {server, client, secret, token} or throws an Error whose message is shown to the user. */
export function parsePairing(text) {
  const value = String(text || "").trim();
  if (!value.startsWith(PAIRING_PREFIX)) throw new Error(`a pairing string starts with "${PAIRING_PREFIX}"`);
  let data;
  try {
    data = JSON.parse(new TextDecoder().decode(base64UrlDecode(value.slice(PAIRING_PREFIX.length))));
  } catch {
    throw new Error("the pairing string is damaged (copy it again from `topicfeed clients add`)");
  }
  for (const key of ["server", "client", "secret", "token"]) {
    if (typeof data[key] !== "string" || !data[key]) throw new Error(`the pairing string has no ${key}`);
  }
  let server;
  try {
    server = new URL(data.server);
  } catch {
    throw new Error("the pairing string's server is not a URL");
  }
  if (server.protocol !== "http:" && server.protocol !== "https:") throw new Error("the server must be an http(s) URL");
  return { server: server.origin + server.pathname.replace(/\/+$/, ""), client: data.client, secret: data.secret, token: data.token };
}

/** The host-permission pattern for a server URL ("http://127.0.0.1:8080" -> "http://127.0.0.1/*"). */
export function originPattern(serverUrl) {
  const url = new URL(serverUrl);
  return `${url.protocol}//${url.hostname}/*`;
}
