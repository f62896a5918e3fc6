// Content script (classic script, no imports; lib/elements.js runs first and provides
// topicfeedElements): reports the page to the service worker and, if the page is a known
// article, shows a panel in an open Shadow DOM. It follows in-page (history.pushState)
// navigations by watching the URL, since the webNavigation permission would add a
// browsing-history warning at install. The page URL never leaves the browser: the service
// worker sends only a hash prefix.
(() => {
  if (window.top !== window || document.documentElement.hasAttribute("data-topicfeed")) return;
  document.documentElement.setAttribute("data-topicfeed", "");
  const { el, link } = globalThis.topicfeedElements;

  const URL_POLL_MS = 500; // how soon an in-page navigation is noticed; one string comparison per tick
  const NARROW = "(max-width: 720px)"; // the panel would cover most of the article: start collapsed

  const STYLE = `
    :host { all: initial; }
    .panel, .pill { position: fixed; right: 16px; bottom: 16px; z-index: 2147483647; box-sizing: border-box;
      font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b; background: #fff;
      border: 1px solid #d0d0d0; box-shadow: 0 6px 24px rgba(0,0,0,.18); }
    .panel { width: min(340px, calc(100vw - 32px)); max-height: min(70vh, 560px); overflow: auto;
      padding: 12px 14px; border-radius: 10px; }
    .pill { border-radius: 18px; padding: 6px 12px; cursor: pointer; font-weight: 600; }
    h2 { font-size: 15px; margin: 0 56px 8px 0; }
    h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; margin: 10px 0 4px; color: #555; }
    ul { list-style: none; margin: 0; padding: 0; }
    li { margin: 0 0 8px; overflow-wrap: anywhere; } /* a title without spaces wraps inside the panel */
    a { color: #0b57d0; text-decoration: none; } a:hover, a:focus { text-decoration: underline; }
    a:focus-visible, button:focus-visible { outline: 2px solid #0b57d0; outline-offset: 2px; }
    .meta { display: block; font-size: 12px; color: #666; }
    .topics li { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; }
    .topics li > span:first-child { min-width: 0; }
    .topics .actions { display: flex; gap: 8px; white-space: nowrap; }
    .copy { border: 0; background: transparent; color: #0b57d0; font: inherit; font-size: 12px; cursor: pointer; padding: 0; }
    .clip { position: fixed; top: 0; left: 0; width: 1px; height: 1px; opacity: 0; pointer-events: none; }
    .controls { position: absolute; top: 6px; right: 6px; display: flex; gap: 2px; }
    .controls button { border: 0; background: transparent; font-size: 18px; line-height: 1; cursor: pointer;
      color: inherit; padding: 4px 6px; border-radius: 4px; }
    @media (prefers-color-scheme: dark) {
      .panel, .pill { color: #e8e8e8; background: #1f1f1f; border-color: #444; }
      a, .copy { color: #8ab4f8; } h3, .meta { color: #aaa; }
    }`;

  let host = null; // the panel's shadow host while one is shown
  let reported = ""; // the page (URL without fragment) last reported to the service worker

  function remove() {
    if (host) host.remove();
    host = null;
  }

  /**
   * Copy `text` on a click on `button`: the async clipboard API where the page has it, else a
   * selected, invisible textarea beside the button and execCommand("copy") — plain-http pages
   * have no navigator.clipboard, and a page's Permissions-Policy may refuse it.
   */
  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // fall back below
    }
    const area = el("textarea", { class: "clip", readonly: "", "aria-hidden": "true", tabindex: "-1" });
    area.value = text;
    button.after(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    button.focus({ preventScroll: true });
    if (!copied) throw new Error("copy refused");
  }

  function topicsList(view) {
    const topics = el("ul", { class: "topics", "data-testid": "topicfeed-topics" });
    for (const topic of view.topics) {
      const li = el("li");
      li.appendChild(el("span", { dir: "auto" }, topic.name)); // dir=auto: RTL names read right to left
      const actions = el("span", { class: "actions" });
      if (topic.subscribe && topic.subscribe.href) {
        actions.appendChild(link("Subscribe", topic.subscribe.href, { class: "subscribe", title: `Subscribe in ${topic.subscribe.name}` }));
      }
      const copy = el("button", { type: "button", class: "copy", title: "Copy the feed URL" }, "Copy");
      copy.addEventListener("click", () => copyText(topic.feeds.atom, copy).then(
        () => { copy.textContent = "Copied"; }, () => { copy.textContent = "Copy failed"; }));
      actions.appendChild(copy);
      li.appendChild(actions);
      topics.appendChild(li);
    }
    return topics;
  }

  function relatedList(view) {
    const related = el("ul", { "data-testid": "topicfeed-related" });
    for (const item of view.related) {
      const li = el("li");
      li.appendChild(link(item.title, item.href, { dir: "auto" }));
      const meta = [item.provider, item.date].filter(Boolean).join(" · ");
      if (meta) li.appendChild(el("span", { class: "meta" }, meta));
      related.appendChild(li);
    }
    if (!view.related.length) related.appendChild(el("li", { class: "meta" }, "No related articles yet."));
    return related;
  }

  function panel(view, show) {
    const box = el("aside", { class: "panel", "data-testid": "topicfeed-panel", role: "complementary",
      "aria-label": "Related articles from topicfeed" });
    const controls = el("div", { class: "controls" });
    const collapse = el("button", { type: "button", "data-testid": "topicfeed-collapse", "aria-label": "Collapse related articles" }, "–");
    collapse.addEventListener("click", () => show("collapsed"));
    const close = el("button", { type: "button", "data-testid": "topicfeed-close",
      "aria-label": "Hide related articles on this site (switch them back on from the toolbar button)" }, "×");
    close.addEventListener("click", () => {
      remove();
      chrome.runtime.sendMessage({ type: "dismiss", url: reported }).catch(() => {});
    });
    box.addEventListener("keydown", (event) => { if (event.key === "Escape") show("collapsed"); });
    controls.append(collapse, close);
    box.appendChild(controls);
    box.appendChild(el("h2", {}, "Related articles"));
    // Topics first: with a long related list they would otherwise sit below the fold.
    if (view.topics.length) {
      box.appendChild(el("h3", {}, "Topic feeds"));
      box.appendChild(topicsList(view));
      box.appendChild(el("h3", {}, "Related"));
    }
    box.appendChild(relatedList(view));
    return box;
  }

  function pill(view, show) {
    const count = view.related.length;
    const button = el("button", { type: "button", class: "pill", "data-testid": "topicfeed-expand",
      "aria-label": "Show related articles from topicfeed" }, `Related · ${count}`);
    button.addEventListener("click", () => show("expanded"));
    return button;
  }

  function render(view) {
    remove();
    host = el("div", { "data-topicfeed-host": "" });
    const root = host.attachShadow({ mode: "open" }); // open: end-to-end tests read it
    root.appendChild(el("style", {}, STYLE));
    // Called with a mode on the user's click or key: focus follows the toggle (never on page load).
    const show = (mode, fromUser = true) => {
      for (const node of root.querySelectorAll(".panel, .pill")) node.remove();
      const node = mode === "expanded" ? panel(view, show) : pill(view, show);
      root.appendChild(node);
      if (fromUser) (node.matches("button") ? node : node.querySelector("button")).focus({ preventScroll: true });
    };
    show(window.matchMedia(NARROW).matches ? "collapsed" : "expanded", false);
    document.body.appendChild(host);
  }

  function check() {
    const url = location.href.split("#")[0];
    reported = url;
    remove();
    const feeds = Array.from(document.querySelectorAll('link[rel~="alternate"][href]'),
      (l) => ({ href: l.href, type: l.type, title: l.title }));
    chrome.runtime.sendMessage({ type: "page", url, feeds }).then((answer) => {
      // An answer for a page this tab has already left is dropped.
      if (reported === url && answer && answer.show && answer.view) render(answer.view);
    }, () => {});
  }

  setInterval(() => {
    if (location.href.split("#")[0] !== reported) check();
  }, URL_POLL_MS);
  // The popup asks for a fresh look when the panel is switched back on for this site.
  chrome.runtime.onMessage.addListener((message) => {
    if (message && message.type === "refresh") check();
  });
  check();
})();
