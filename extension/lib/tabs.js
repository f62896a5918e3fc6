// What the extension knows about each tab, kept in chrome.storage.session, and the badge.

export async function setTabState(tabId, state) {
  await chrome.storage.session.set({ [`tab:${tabId}`]: { ...state, at: Date.now() } });
  const count = state.status === "article" ? state.view.related.length : 0;
  await chrome.action.setBadgeText({ tabId, text: state.status === "unverified" ? "!" : count ? String(count) : "" });
  if (state.status === "unverified") await chrome.action.setBadgeBackgroundColor({ tabId, color: "#b00020" });
}

export async function getTabState(tabId) {
  const key = `tab:${tabId}`;
  return (await chrome.storage.session.get(key))[key] || null;
}

export async function forgetTab(tabId) {
  await chrome.storage.session.remove(`tab:${tabId}`);
}
