import { READERS, safeHttpUrl, subscribeUrl } from "./lib/readers.js";
import { getSettings } from "./lib/settings.js";
import { discoveredFeeds } from "./lib/viewmodel.js";

const $ = (id) => document.getElementById(id);

const MESSAGES = {
  unpaired: "Not paired with a topicfeed server yet: open Options.",
  disabled: "The extension is switched off for this site.",
  unknown: "This page is not an article your server knows.",
  none: "Nothing known about this tab (the extension runs on infoworld.com and the sites you enable).",
};

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function feedRow(name, feedUrl, settings) {
  const li = el("li");
  const row = el("div", { class: "row" });
  row.appendChild(el("span", {}, name));
  const copy = el("button", { type: "button", "data-feed": feedUrl }, "Copy URL");
  copy.addEventListener("click", async () => {
    await navigator.clipboard.writeText(feedUrl);
    copy.textContent = "Copied";
  });
  row.appendChild(copy);
  const reader = READERS.find((r) => r.id === settings.reader) || READERS[0];
  const target = subscribeUrl(reader.id, feedUrl, settings);
  if (target) row.appendChild(el("a", { href: target, target: "_blank", rel: "noopener noreferrer", class: "subscribe" },
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

async function main() {
  const settings = await getSettings();
  const param = new URLSearchParams(location.search).get("tab"); // for opening the popup as a page
  const tabId = param ? Number(param) : (await chrome.tabs.query({ active: true, currentWindow: true }))[0]?.id;
  const state = tabId === undefined ? null : await chrome.runtime.sendMessage({ type: "tab-state", tabId });
  const status = $("status");
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
    $("related-count").textContent = `${view.related.length} related article${view.related.length === 1 ? "" : "s"}`;
    $("topics-section").hidden = !view.topics.length;
    for (const topic of view.topics) $("topics").appendChild(feedRow(topic.name, topic.feeds.atom, settings));
  } else if (state.status === "unverified" || state.status === "error") {
    status.textContent = state.status === "unverified" ? `Nothing shown: ${state.reason}` : `Server problem: ${state.reason}`;
    status.className = "error";
  } else {
    status.textContent = MESSAGES[state.status] || MESSAGES.none;
  }
  if (tabId !== undefined) {
    const feeds = await pageFeeds(tabId, state);
    $("page-feeds-section").hidden = !feeds.length;
    for (const feed of feeds) $("page-feeds").appendChild(feedRow(feed.title, feed.href, settings));
  }
}

main();
