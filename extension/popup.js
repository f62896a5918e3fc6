import "./lib/elements.js";
import { readerLink } from "./lib/readers.js";
import { getSettings } from "./lib/settings.js";
import { discoveredFeeds } from "./lib/viewmodel.js";

const { el, safeHttpUrl } = globalThis.topicfeedElements;
const $ = (id) => document.getElementById(id);

const MESSAGES = {
  loading: "Checking this page with your server…",
  unpaired: "Not paired with a topicfeed server yet: open Options.",
  disabled: "The extension is switched off for this site.",
  unknown: "This page is not an article your server knows.",
  none: "Nothing known about this tab (the extension runs on infoworld.com and the sites you enable).",
};

function feedRow(name, feedUrl, settings) {
  const li = el("li");
  const row = el("div", { class: "row" });
  row.appendChild(el("span", { dir: "auto" }, name));
  const copy = el("button", { type: "button", "data-feed": feedUrl }, "Copy URL");
  copy.addEventListener("click", async () => {
    await navigator.clipboard.writeText(feedUrl);
    copy.textContent = "Copied";
  });
  row.appendChild(copy);
  const reader = readerLink(feedUrl, settings);
  if (reader.href) row.appendChild(el("a", { href: reader.href, target: "_blank", rel: "noopener noreferrer", class: "subscribe" },
    `Subscribe in ${reader.name}`));
  li.appendChild(row);
  return li;
}

async function pageFeeds(tabId, state) {
  if (state && Array.isArray(state.feeds)) return state.feeds;
  try { // activeTab: the user opened the popup on this tab
    const [result] = await chrome.scripting.executeScript({ target: { tabId }, func: () =>
      [Array.from(document.querySelectorAll('link[rel~="alternate"][href]'), (l) => ({ href: l.href, type: l.type, title: l.title })),
        location.href] });
    return discoveredFeeds(result.result[0], result.result[1]);
  } catch {
    return [];
  }
}

/** The tab's state if it was computed for the page the tab shows now (the tab may have moved on). */
async function currentState(tabId) {
  const state = await chrome.runtime.sendMessage({ type: "tab-state", tabId });
  const tab = await chrome.tabs.get(tabId).catch(() => null);
  if (state && tab && tab.url && state.url !== tab.url.split("#")[0]) return null;
  return state;
}

/** A button that switches the tab's site (back) on and asks the page to look again. */
function siteButton(tabId, domain, label) {
  const button = el("button", { type: "button", "data-testid": "popup-site-on" }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    await chrome.runtime.sendMessage({ type: "set-site", domain, on: true });
    await chrome.tabs.sendMessage(tabId, { type: "refresh" }).catch(() => {});
  });
  return button;
}

function renderState(tabId, state, settings) {
  const status = $("status");
  status.className = "";
  $("site-action").replaceChildren();
  $("topics").replaceChildren();
  $("article-section").hidden = true;
  $("topics-section").hidden = true;
  if (!state) {
    status.textContent = MESSAGES.none;
  } else if (state.status === "article") {
    status.textContent = "Known article · verified ✓";
    status.className = "ok";
    const view = state.view;
    $("article-section").hidden = false;
    const link = $("article-link");
    link.textContent = view.title;
    const href = safeHttpUrl(view.href);
    if (href) link.href = href;
    else link.removeAttribute("href"); // re-rendered on every state change: never keep the last article's link
    $("related-count").textContent = `${view.related.length} related article${view.related.length === 1 ? "" : "s"}`;
    $("topics-section").hidden = !view.topics.length;
    for (const topic of view.topics) $("topics").appendChild(feedRow(topic.name, topic.feeds.atom, settings));
    if (state.site.dismissed) {
      $("site-action").append(el("span", { class: "muted" }, `The panel is hidden on ${state.site.domain}. `),
        siteButton(tabId, state.site.domain, "Show the panel again"));
    }
  } else if (state.status === "unverified" || state.status === "error") {
    status.textContent = state.status === "unverified" ? `Nothing shown: ${state.reason}` : `Server problem: ${state.reason}`;
    status.className = "error";
  } else {
    status.textContent = MESSAGES[state.status] || MESSAGES.none;
    if (state.status === "disabled" && state.site.builtIn) {
      $("site-action").append(siteButton(tabId, state.site.domain, `Switch on for ${state.site.domain}`));
    }
  }
}

async function main() {
  const settings = await getSettings();
  const param = new URLSearchParams(location.search).get("tab"); // for opening the popup as a page
  const tabId = param ? Number(param) : (await chrome.tabs.query({ active: true, currentWindow: true }))[0]?.id;
  if (tabId === undefined) {
    renderState(tabId, null, settings);
    return;
  }
  const state = await currentState(tabId);
  renderState(tabId, state, settings);
  // A lookup still in flight ("checking…") or a refresh after switching on: follow the tab's state.
  chrome.storage.onChanged.addListener(async (changes, area) => {
    if (area === "session" && `tab:${tabId}` in changes) renderState(tabId, await currentState(tabId), settings);
  });
  const feeds = await pageFeeds(tabId, state);
  $("page-feeds-section").hidden = !feeds.length;
  for (const feed of feeds) $("page-feeds").appendChild(feedRow(feed.title, feed.href, settings));
}

main();
