// Turns verified API objects into what the panel and popup display: plain strings and
// http(s) links only. Pure, so node --test checks it.

import { safeHttpUrl } from "./readers.js";

function text(value, max = 300) {
  return typeof value === "string" ? value.replace(/\s+/g, " ").trim().slice(0, max) : "";
}

/** "18 Jul 2022" in UTC, or "" for anything that is not a date. */
export function formatDate(value) {
  const when = typeof value === "string" ? new Date(value) : null;
  if (!when || Number.isNaN(when.getTime())) return "";
  return when.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
}

/** Panel/popup model of one verified article (from /api/v1/lookup). */
export function articleView(article) {
  const related = (Array.isArray(article.related) ? article.related : [])
    .map((r) => ({ title: text(r.title, 200), href: safeHttpUrl(r.link), provider: text(r.provider && r.provider.name, 80),
      date: formatDate(r.publishedDateTime), source: r.source === "curated" ? "curated" : "computed" }))
    .filter((r) => r.title && r.href);
  const topics = (Array.isArray(article.topics) ? article.topics : [])
    .map((t) => ({ name: text(t.name, 80), slug: text(t.slug, 80), feeds: {
      atom: safeHttpUrl(t.feeds && t.feeds.atom), rss: safeHttpUrl(t.feeds && t.feeds.rss), json: safeHttpUrl(t.feeds && t.feeds.json) } }))
    .filter((t) => t.name && t.feeds.atom);
  return { id: text(article.id, 200), title: text(article.title, 200), href: safeHttpUrl(article.link), related, topics };
}

/** Feeds a page announces with <link rel="alternate">: [{title, href, type}] for RSS, Atom and JSON Feed. */
export const FEED_TYPES = ["application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"];

export function discoveredFeeds(links, pageUrl) {
  const seen = new Set();
  const out = [];
  for (const link of links || []) {
    const type = String(link.type || "").toLowerCase().split(";")[0].trim();
    if (!FEED_TYPES.includes(type)) continue;
    let href;
    try {
      href = safeHttpUrl(new URL(link.href, pageUrl).href);
    } catch {
      href = null;
    }
    if (!href || seen.has(href)) continue;
    seen.add(href);
    out.push({ title: text(link.title, 120) || href, href, type });
  }
  return out;
}
