// Turns verified API objects into what the panel and popup display: plain strings and
// http(s) links only. Pure, so node --test checks it.

import "./elements.js";
import { readerLink } from "./readers.js";

const { safeHttpUrl } = globalThis.topicfeedElements;

/** `value` on one line, at most `max` characters (code points: a cut never splits a surrogate pair). */
function text(value, max = 300) {
  return typeof value === "string" ? Array.from(value.replace(/\s+/g, " ").trim()).slice(0, max).join("") : "";
}

/**
 * The form two headlines share when they are the same story: NFKC, lower case, every run of
 * characters that are not letters or digits as one space. The server drops duplicates by the
 * same rule (server/api_objects.py `title_key`); this keeps older servers' answers tidy too.
 */
export function titleKey(title) {
  return String(title).normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

/** "18 Jul 2022" in UTC, or "" for anything that is not a date. */
export function formatDate(value) {
  const when = typeof value === "string" ? new Date(value) : null;
  if (!when || Number.isNaN(when.getTime())) return "";
  return when.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
}

/**
 * Panel/popup model of one verified article (from /api/v1/lookup). `settings` picks the feed
 * reader for each topic's subscribe link. Images are left out on purpose: loading them into
 * the page would tell third-party image hosts which article is being read.
 */
export function articleView(article, settings = {}) {
  const seen = new Set([titleKey(text(article.title, 200))]);
  const related = [];
  for (const r of Array.isArray(article.related) ? article.related : []) {
    const item = { title: text(r.title, 200), href: safeHttpUrl(r.link), provider: text(r.provider && r.provider.name, 80),
      date: formatDate(r.publishedDateTime), source: r.source === "curated" ? "curated" : "computed" };
    const key = titleKey(item.title);
    if (!item.title || !item.href || seen.has(key)) continue;
    seen.add(key);
    related.push(item);
  }
  const topics = (Array.isArray(article.topics) ? article.topics : [])
    .map((t) => {
      const feeds = { atom: safeHttpUrl(t.feeds && t.feeds.atom), rss: safeHttpUrl(t.feeds && t.feeds.rss),
        json: safeHttpUrl(t.feeds && t.feeds.json) };
      return { name: text(t.name, 80), slug: text(t.slug, 80), feeds, subscribe: readerLink(feeds.atom, settings) };
    })
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
