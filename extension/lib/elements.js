// The one home of the "http(s) links only" rule and of element creation, for every surface:
// the content script (this file is a classic script listed before content.js in the manifest,
// because content scripts cannot be ES modules and web_accessible_resources would expose
// extension files to every page), the extension pages and the service worker (both load it
// with a side-effect `import "./lib/elements.js"`). No import/export statements, so it parses
// as either kind of script; it publishes one frozen object on the global scope, which for a
// content script is the extension's isolated world, never the page's.
(() => {
  if (globalThis.topicfeedElements) return; // injected twice (manifest + registered script): keep the first

  /** The absolute http(s) URL `value` denotes, or null: nothing else ever becomes a link. */
  function safeHttpUrl(value) {
    try {
      const url = new URL(String(value));
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  /** A new element of `doc` with attributes set as strings and `text` set as text, never parsed as HTML. */
  function el(tag, attrs = {}, text = "", doc = document) {
    const node = doc.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  }

  /** A link opening in a new tab without opener or referrer; plain text when `href` is not http(s). */
  function link(text, href, attrs = {}, doc = document) {
    const safe = safeHttpUrl(href);
    if (!safe) return el("span", {}, text, doc);
    return el("a", { ...attrs, href: safe, target: "_blank", rel: "noopener noreferrer" }, text, doc);
  }

  globalThis.topicfeedElements = Object.freeze({ safeHttpUrl, el, link });
})();
