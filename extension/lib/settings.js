// Settings live in chrome.storage.local (the service worker is killed when idle: no globals).

export const DEFAULTS = {
  pairing: null, // {server, client, secret, token}
  disabledSites: [], // domains switched off by the user
  enabledProviders: [], // provider domains granted at runtime (besides infoworld.com)
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

/** The registrable-ish domain a page belongs to, for per-site switches ("www.infoworld.com" -> "infoworld.com"). */
export function siteOf(url) {
  try {
    return new URL(url).hostname.toLowerCase().replace(/^www\./, "");
  } catch {
    return "";
  }
}

export function siteEnabled(settings, site) {
  return !settings.disabledSites.some((d) => site === d || site.endsWith(`.${d}`));
}
