// The per-site switch model, one for every site: settings.sites maps a domain to
// {on: boolean, dismissed: boolean}. Built-in sites (the manifest's content-script matches)
// are on unless switched off; provider sites are off until the user grants them in the
// options page, which also registers the content script there. Closing the panel marks the
// site `dismissed`: lookups, badge and popup go on, the panel stays away until switched back on.

/** Sites the manifest's content_scripts already cover (no runtime permission needed). */
export const BUILT_IN_SITES = ["infoworld.com"];

/** The site a page belongs to ("https://www.infoworld.com/a" -> "infoworld.com"), or "" for a bad URL. */
export function siteOf(url) {
  try {
    return new URL(url).hostname.toLowerCase().replace(/^www\./, "");
  } catch {
    return "";
  }
}

function covers(domain, site) {
  return site === domain || site.endsWith(`.${domain}`);
}

/** {domain, on, dismissed, builtIn} for a page's site; domain is the switch's key ("" when no switch covers it). */
export function siteSwitch(settings, site) {
  const sites = settings.sites || {};
  const builtIn = BUILT_IN_SITES.find((d) => covers(d, site));
  const domain = builtIn || Object.keys(sites).find((d) => covers(d, site)) || "";
  const entry = sites[domain] || {};
  return { domain, on: builtIn ? entry.on !== false : entry.on === true, dismissed: entry.dismissed === true, builtIn: !!builtIn };
}

/** A copy of the sites map with `changes` ({on}, {dismissed}) applied to `domain`; switching on clears a dismissal. */
export function withSite(sites, domain, changes) {
  const entry = { on: true, dismissed: false, ...(sites || {})[domain], ...changes };
  if (changes.on === true) entry.dismissed = false;
  return { ...sites, [domain]: entry };
}

export function patternsFor(domain) {
  return [`*://${domain}/*`, `*://*.${domain}/*`];
}

/** Inject the content script on a granted provider site (built-in sites have it from the manifest). */
export async function registerSite(domain) {
  await chrome.scripting.registerContentScripts([{
    id: `provider:${domain}`, matches: patternsFor(domain), js: ["lib/elements.js", "content.js"], runAt: "document_idle",
    persistAcrossSessions: true,
  }]).catch(async (err) => {
    if (!String(err.message || err).includes("Duplicate")) throw err;
  });
}

/** Stop injecting on a provider site and give its permission back. */
export async function unregisterSite(domain) {
  await chrome.scripting.unregisterContentScripts({ ids: [`provider:${domain}`] }).catch(() => {});
  await chrome.permissions.remove({ origins: patternsFor(domain) }).catch(() => {});
}
