// Content script (classic script, no imports): reports the page to the service worker and,
// if the page is a known article, shows a dismissible panel in an open Shadow DOM.
// The page URL never leaves the browser: the service worker sends only a hash prefix.
(() => {
  if (window.top !== window || document.documentElement.hasAttribute("data-topicfeed")) return;
  document.documentElement.setAttribute("data-topicfeed", "");

  const STYLE = `
    :host { all: initial; }
    .panel { position: fixed; right: 16px; bottom: 16px; z-index: 2147483647; width: 340px; max-height: 70vh;
      overflow: auto; box-sizing: border-box; padding: 12px 14px; border-radius: 10px;
      font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b; background: #fff;
      border: 1px solid #d0d0d0; box-shadow: 0 6px 24px rgba(0,0,0,.18); }
    h2 { font-size: 15px; margin: 0 28px 8px 0; }
    h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; margin: 10px 0 4px; color: #555; }
    ul { list-style: none; margin: 0; padding: 0; }
    li { margin: 0 0 8px; }
    a { color: #0b57d0; text-decoration: none; } a:hover, a:focus { text-decoration: underline; }
    a:focus-visible, button:focus-visible { outline: 2px solid #0b57d0; outline-offset: 2px; }
    .meta { display: block; font-size: 12px; color: #666; }
    .topics li { display: flex; justify-content: space-between; gap: 8px; }
    .close { position: absolute; top: 8px; right: 8px; border: 0; background: transparent; font-size: 18px;
      line-height: 1; cursor: pointer; color: inherit; padding: 4px 6px; border-radius: 4px; }
    @media (prefers-color-scheme: dark) {
      .panel { color: #e8e8e8; background: #1f1f1f; border-color: #444; }
      a { color: #8ab4f8; } h3, .meta { color: #aaa; }
    }`;

  function safeHref(value) {
    try {
      const url = new URL(String(value));
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function el(tag, attrs = {}, text = "") {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text; // text is always text, never HTML
    return node;
  }

  function link(text, href) {
    const safe = safeHref(href);
    if (!safe) return el("span", {}, text);
    return el("a", { href: safe, target: "_blank", rel: "noopener noreferrer" }, text);
  }

  function render(view) {
    const host = el("div", { "data-topicfeed-host": "" });
    const root = host.attachShadow({ mode: "open" }); // open: end-to-end tests read it
    root.appendChild(el("style", {}, STYLE));
    const panel = el("aside", { class: "panel", "data-testid": "topicfeed-panel", role: "complementary",
      "aria-label": "Related articles from topicfeed" });
    const close = el("button", { class: "close", type: "button", "aria-label": "Close related articles" }, "×");
    close.addEventListener("click", () => host.remove());
    panel.addEventListener("keydown", (event) => { if (event.key === "Escape") host.remove(); });
    panel.appendChild(close);
    panel.appendChild(el("h2", {}, "Related articles"));
    const related = el("ul", { "data-testid": "topicfeed-related" });
    for (const item of view.related) {
      const li = el("li");
      li.appendChild(link(item.title, item.href));
      const meta = [item.provider, item.date].filter(Boolean).join(" · ");
      if (meta) li.appendChild(el("span", { class: "meta" }, meta));
      related.appendChild(li);
    }
    if (!view.related.length) related.appendChild(el("li", { class: "meta" }, "No related articles yet."));
    panel.appendChild(related);
    if (view.topics.length) {
      panel.appendChild(el("h3", {}, "Topics"));
      const topics = el("ul", { class: "topics", "data-testid": "topicfeed-topics" });
      for (const topic of view.topics) {
        const li = el("li");
        li.appendChild(el("span", {}, topic.name));
        li.appendChild(link("Subscribe", topic.feeds.atom));
        topics.appendChild(li);
      }
      panel.appendChild(topics);
    }
    root.appendChild(panel);
    document.body.appendChild(host);
  }

  const feeds = Array.from(document.querySelectorAll('link[rel~="alternate"][href]'),
    (l) => ({ href: l.href, type: l.type, title: l.title }));
  chrome.runtime.sendMessage({ type: "page", feeds }).then((answer) => {
    if (answer && answer.show && answer.view) render(answer.view);
  }, () => {});
})();
