// Subscribe links for feed readers. Templates get the feed URL percent-encoded in {url}.

import "./elements.js";

const { safeHttpUrl } = globalThis.topicfeedElements;

export const READERS = [
  { id: "feedly", name: "Feedly", template: "https://feedly.com/i/subscription/feed/{url}" },
  { id: "inoreader", name: "Inoreader", template: "https://www.inoreader.com/?add_feed={url}" },
  { id: "newsblur", name: "NewsBlur", template: "https://www.newsblur.com/?url={url}" },
  { id: "theoldreader", name: "The Old Reader", template: "https://theoldreader.com/feeds/subscribe?url={url}" },
  { id: "miniflux", name: "Miniflux", template: "{base}/bookmarklet?uri={url}", needsBase: true },
  { id: "freshrss", name: "FreshRSS", template: "{base}/i/?c=feed&a=add&url_rss={url}", needsBase: true },
  { id: "custom", name: "Custom", template: "{custom}", needsCustom: true },
];

/**
 * Subscribe URL for `feedUrl` in reader `id`; null when the reader needs settings that are
 * missing, or the result is not an http(s) URL. settings: {readerBase: {miniflux, freshrss}, customTemplate}.
 */
export function subscribeUrl(id, feedUrl, settings = {}) {
  const reader = READERS.find((r) => r.id === id);
  const feed = safeHttpUrl(feedUrl);
  if (!reader || !feed) return null;
  let template = reader.template;
  if (reader.needsBase) {
    const base = safeHttpUrl((settings.readerBase || {})[id]);
    if (!base) return null;
    template = template.replace("{base}", base.replace(/\/+$/, ""));
  }
  if (reader.needsCustom) {
    template = settings.customTemplate || "";
    if (!template.includes("{url}")) return null;
  }
  return safeHttpUrl(template.replace("{url}", encodeURIComponent(feed)));
}

/** The reader chosen in the options and its subscribe URL for `feedUrl`: {name, href}; href is null when unusable. */
export function readerLink(feedUrl, settings = {}) {
  const reader = READERS.find((r) => r.id === settings.reader) || READERS[0];
  return { name: reader.name, href: subscribeUrl(reader.id, feedUrl, settings) };
}
