// Service worker: imports feature modules and registers listeners at top level.
// It is the only part that talks to the server; pages get verified, sanitised data only.

import { parsePairing } from "./lib/pairing.js";
import { articleView, discoveredFeeds } from "./lib/viewmodel.js";
import { ServerError, fetchVerified, lookupPrefix } from "./lib/server.js";
import { getSettings, saveSettings, siteEnabled, siteOf } from "./lib/settings.js";
import { disableProvider, enableProvider } from "./lib/sites.js";
import { forgetTab, getTabState, setTabState } from "./lib/tabs.js";
import { PREFIX_LENGTH, matchLookup, normalizeUrl, urlHash } from "./lib/urls.js";

async function handlePage(message, sender) {
  const tabId = sender.tab && sender.tab.id;
  const pageUrl = sender.url || (sender.tab && sender.tab.url);
  if (tabId === undefined || !pageUrl) return { show: false };
  const settings = await getSettings();
  const feeds = discoveredFeeds(message.feeds, pageUrl);
  const site = siteOf(pageUrl);
  if (!settings.pairing) {
    await setTabState(tabId, { status: "unpaired", feeds, site });
    return { show: false };
  }
  if (!siteEnabled(settings, site)) {
    await setTabState(tabId, { status: "disabled", feeds, site });
    return { show: false };
  }
  let hash;
  try {
    hash = await urlHash(normalizeUrl(pageUrl));
  } catch {
    return { show: false };
  }
  try {
    // Only the first PREFIX_LENGTH hex characters leave the browser; the match is made here.
    const body = await lookupPrefix(settings.pairing, hash.slice(0, PREFIX_LENGTH));
    const [article] = matchLookup(body.value, hash);
    if (!article) {
      await setTabState(tabId, { status: "unknown", feeds, site });
      return { show: false };
    }
    const view = articleView(article);
    await setTabState(tabId, { status: "article", view, feeds, site, verified: true });
    return { show: true, view };
  } catch (err) {
    const status = err instanceof ServerError && err.kind === "unverified" ? "unverified" : "error";
    await setTabState(tabId, { status, reason: String(err.message || err), feeds, site });
    return { show: false };
  }
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
    return { ok: true, server: pairing.server, client: pairing.client, providers: providers.value.length };
  } catch (err) {
    return { ok: false, reason: String(err.message || err) };
  }
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

async function handleSetProvider(message) {
  const settings = await getSettings();
  const domain = String(message.domain || "").toLowerCase();
  const enabled = new Set(settings.enabledProviders);
  if (message.enabled) {
    await enableProvider(domain);
    enabled.add(domain);
  } else {
    await disableProvider(domain);
    enabled.delete(domain);
  }
  await saveSettings({ enabledProviders: [...enabled].sort() });
  return { ok: true };
}

const HANDLERS = {
  page: handlePage,
  pair: handlePair,
  providers: handleProviders,
  "set-provider": handleSetProvider,
  "tab-state": (message) => getTabState(message.tabId),
};

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  const handler = message && HANDLERS[message.type];
  if (!handler) return false;
  // Pages (content scripts) may only report themselves; settings and pairing come from extension pages.
  const fromExtensionPage = sender.id === chrome.runtime.id && String(sender.url || "").startsWith(chrome.runtime.getURL(""));
  if (message.type !== "page" && !fromExtensionPage) return false;
  handler(message, sender).then(sendResponse, (err) => sendResponse({ ok: false, reason: String(err.message || err) }));
  return true; // async reply
});

chrome.tabs.onRemoved.addListener((tabId) => {
  forgetTab(tabId);
});
