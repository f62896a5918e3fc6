// Settings live in chrome.storage.local (the service worker is killed when idle: no globals).

export const DEFAULTS = {
  pairing: null, // {server, client, secret, token}
  sites: {}, // per-site switches, see sites.js: {[domain]: {on, dismissed}}
  reader: "feedly",
  readerBase: {}, // {miniflux: "https://…", freshrss: "https://…"}
  customTemplate: "",
};

export async function getSettings() {
  const stored = await chrome.storage.local.get(Object.keys(DEFAULTS));
  return { ...DEFAULTS, ...stored };
}

export async function saveSettings(changes) {
  await chrome.storage.local.set(changes);
}
