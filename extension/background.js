// Service worker: imports feature modules and registers listeners at top level.
// It is the only part that talks to the server; pages get verified, sanitised data only.

import { parsePairing } from "./lib/pairing.js";
import { articleView, discoveredFeeds } from "./lib/viewmodel.js";
import { ServerError, fetchVerified, lookupPrefix } from "./lib/server.js";
import { getSettings, saveSettings } from "./lib/settings.js";
import { registerSite, siteOf, siteSwitch, unregisterSite, withSite } from "./lib/sites.js";
import { forgetTab, getTabState, setTabState } from "./lib/tabs.js";
import { PREFIX_LENGTH, matchLookup, normalizeUrl, urlHash } from "./lib/urls.js";

// The newest page each tab reported, so that a slow answer for a page the tab has left is
// dropped instead of overwriting the current page's state. Deliberately in memory: it only
// orders requests in flight, which die with the worker anyway.
const latestPage = new Map();

/** The page a content script reports: its own `url` when it is on the sender's origin (SPA navigations). */
function reportedUrl(message, sender) {
  const senderUrl = sender.url || (sender.tab && sender.tab.url) || "";
  try {
    if (message.url && new URL(message.url).origin === new URL(senderUrl).origin) return String(message.url).split("#")[0];
  } catch {
    // fall through to the sender's own URL
  }
  return senderUrl.split("#")[0];
}

async function handlePage(message, sender) {
  const tabId = sender.tab && sender.tab.id;
  const url = reportedUrl(message, sender);
  if (tabId === undefined || !url) return { show: false };
  const token = {};
  latestPage.set(tabId, token);
  const settings = await getSettings();
  const base = { url, feeds: discoveredFeeds(message.feeds, url), site: siteSwitch(settings, siteOf(url)) };
  if (!settings.pairing) return finish(tabId, token, { ...base, status: "unpaired" });
  if (!base.site.on) return finish(tabId, token, { ...base, status: "disabled" });
  let hash;
  try {
    hash = await urlHash(normalizeUrl(url));
  } catch {
    return { show: false };
  }
  // "Checking…" for the popup, written while the lookup runs (not before it: no added latency),
  // and only while this is still the tab's newest page.
  const loading = latestPage.get(tabId) === token ? setTabState(tabId, { ...base, status: "loading" }) : null;
  try {
    // Only the first PREFIX_LENGTH hex characters leave the browser; the match is made here.
    const body = await lookupPrefix(settings.pairing, hash.slice(0, PREFIX_LENGTH));
    await loading;
    const [article] = matchLookup(body.value, hash);
    if (!article) return finish(tabId, token, { ...base, status: "unknown" });
    return finish(tabId, token, { ...base, status: "article", view: articleView(article, settings), verified: true });
  } catch (err) {
    await loading;
    const status = err instanceof ServerError && err.kind === "unverified" ? "unverified" : "error";
    return finish(tabId, token, { ...base, status, reason: String(err.message || err) });
  }
}

/** Store the tab's state unless the tab has reported a newer page meanwhile; the content script's answer. */
function finish(tabId, token, state) {
  if (latestPage.get(tabId) !== token) return { show: false, stale: true };
  // Checked and written in the same turn: no newer report can slip in between.
  const written = setTabState(tabId, state);
  const show = state.status === "article" && !state.site.dismissed;
  return written.then(() => (show ? { show, view: state.view } : { show: false }));
}

async function handleDismiss(message, sender) {
  const settings = await getSettings();
  const site = siteSwitch(settings, siteOf(reportedUrl(message, sender)));
  if (!site.domain) return { ok: false };
  await saveSettings({ sites: withSite(settings.sites, site.domain, { dismissed: true }) });
  const tabId = sender.tab && sender.tab.id;
  const state = tabId === undefined ? null : await getTabState(tabId);
  if (state) await setTabState(tabId, { ...state, site: { ...state.site, dismissed: true } });
  return { ok: true };
}

async function handlePair(message) {
  let pairing;
  try {
    pairing = parsePairing(message.pairing);
  } catch (err) {
    return { ok: false, reason: `bad pairing string: ${err.message}` };
  }
  try {
    const providers = await fetchVerified(pairing, "/api/v1/providers");
    await saveSettings({ pairing });
    await chrome.storage.session.clear(); // answers and tab states verified under the old pairing
    await refreshTabs();
    return { ok: true, server: pairing.server, client: pairing.client, providers: providers.value.length };
  } catch (err) {
    return { ok: false, reason: String(err.message || err) };
  }
}

async function handleUnpair() {
  await saveSettings({ pairing: null });
  await chrome.storage.session.clear();
  await refreshTabs();
  return { ok: true };
}

/**
 * Ask every tab's content script to look again (pair, re-pair, unpair): a panel and badge from
 * the previous pairing must not stay. tabs.query without a URL filter needs no "tabs"
 * permission; tabs without our content script just refuse the message.
 */
async function refreshTabs() {
  const tabs = await chrome.tabs.query({});
  await Promise.all(tabs.map((tab) => chrome.tabs.sendMessage(tab.id, { type: "refresh" }).catch(() => {})));
}

async function handleProviders() {
  const settings = await getSettings();
  if (!settings.pairing) return { ok: false, reason: "not paired" };
  try {
    const body = await fetchVerified(settings.pairing, "/api/v1/providers");
    return { ok: true, providers: body.value.map((p) => ({ domain: String(p.domain), name: String(p.name), count: p.count })) };
  } catch (err) {
    return { ok: false, reason: String(err.message || err) };
  }
}

/** Switch a site on or off (options page, popup); switching on also brings a dismissed panel back. */
async function handleSetSite(message) {
  const domain = String(message.domain || "").toLowerCase();
  if (!domain) return { ok: false, reason: "no site named" };
  const settings = await getSettings();
  const builtIn = siteSwitch(settings, domain).builtIn;
  if (!builtIn) await (message.on ? registerSite(domain) : unregisterSite(domain));
  await saveSettings({ sites: withSite(settings.sites, domain, { on: !!message.on }) });
  return { ok: true };
}

const PAGE_HANDLERS = { page: handlePage, dismiss: handleDismiss };
const EXTENSION_HANDLERS = {
  pair: handlePair,
  unpair: handleUnpair,
  providers: handleProviders,
  "set-site": handleSetSite,
  "tab-state": (message) => getTabState(message.tabId),
};

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  const type = message && message.type;
  // Pages (content scripts) may only report themselves; settings and pairing come from extension pages.
  const fromExtensionPage = sender.id === chrome.runtime.id && String(sender.url || "").startsWith(chrome.runtime.getURL(""));
  const handler = fromExtensionPage ? EXTENSION_HANDLERS[type] : PAGE_HANDLERS[type];
  if (!handler) return false;
  handler(message, sender).then(sendResponse, (err) => sendResponse({ ok: false, reason: String(err.message || err) }));
  return true; // async reply
});

chrome.tabs.onRemoved.addListener((tabId) => {
  latestPage.delete(tabId);
  forgetTab(tabId);
});
