// Provider domains beyond infoworld.com: the user grants each one in the options page, and
// only then is the content script registered there.

export function patternsFor(domain) {
  return [`*://${domain}/*`, `*://*.${domain}/*`];
}

export async function enableProvider(domain) {
  await chrome.scripting.registerContentScripts([{
    id: `provider:${domain}`, matches: patternsFor(domain), js: ["content.js"], runAt: "document_idle", persistAcrossSessions: true,
  }]).catch(async (err) => {
    if (!String(err.message || err).includes("Duplicate")) throw err;
  });
}

export async function disableProvider(domain) {
  await chrome.scripting.unregisterContentScripts({ ids: [`provider:${domain}`] }).catch(() => {});
  await chrome.permissions.remove({ origins: patternsFor(domain) }).catch(() => {});
}
