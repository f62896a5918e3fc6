// What the extension knows about each tab, kept in chrome.storage.session, and the badge.
// Each state names the page (`url`) it was computed for, so a popup never shows an answer
// for a page the tab has since left.

const ERROR_STATUSES = new Set(["unverified", "error"]);

export async function setTabState(tabId, state) {
  await chrome.storage.session.set({ [`tab:${tabId}`]: { ...state, at: Date.now() } });
  const count = state.status === "article" ? state.view.related.length : 0;
  const failed = ERROR_STATUSES.has(state.status);
  await chrome.action.setBadgeText({ tabId, text: failed ? "!" : count ? String(count) : "" });
  await chrome.action.setBadgeBackgroundColor({ tabId, color: failed ? "#b00020" : "#3c4043" });
}

export async function getTabState(tabId) {
  const key = `tab:${tabId}`;
  return (await chrome.storage.session.get(key))[key] || null;
}

export async function forgetTab(tabId) {
  await chrome.storage.session.remove(`tab:${tabId}`);
}
