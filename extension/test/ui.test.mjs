// Pure helpers used by the pages and the service worker: pairing strings, reader links,
// and the view model that decides what text and which links a page may show.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PAIRING_PREFIX, originPattern, parsePairing } from "../lib/pairing.js";
import "../lib/elements.js";
import { READERS, readerLink, subscribeUrl } from "../lib/readers.js";
import { BUILT_IN_SITES, siteOf, siteSwitch, withSite } from "../lib/sites.js";
import { articleView, discoveredFeeds, formatDate, titleKey } from "../lib/viewmodel.js";

const { safeHttpUrl } = globalThis.topicfeedElements;

const encode = (obj) => PAIRING_PREFIX + Buffer.from(JSON.stringify(obj)).toString("base64url");
const GOOD = { server: "http://127.0.0.1:8080/", client: "c_1", secret: "s", token: "t" };

test("pairing strings round-trip and name what is wrong", () => {
  assert.deepEqual(parsePairing(encode(GOOD)), { ...GOOD, server: "http://127.0.0.1:8080" });
  assert.throws(() => parsePairing("hello"), /starts with/);
  assert.throws(() => parsePairing(PAIRING_PREFIX + "!!!"), /damaged/);
  assert.throws(() => parsePairing(encode({ ...GOOD, token: "" })), /no token/);
  assert.throws(() => parsePairing(encode({ ...GOOD, server: "javascript:alert(1)" })), /http\(s\)/);
  assert.equal(originPattern("https://feeds.example.org:8443/sub"), "https://feeds.example.org/*");
});

test("only http(s) links are produced", () => {
  assert.equal(safeHttpUrl("javascript:alert(1)"), null);
  assert.equal(safeHttpUrl("data:text/html,x"), null);
  assert.equal(safeHttpUrl("/relative"), null);
  assert.equal(safeHttpUrl("https://a.example/x"), "https://a.example/x");
});

test("reader templates", () => {
  const feed = "https://feeds.example.org/feeds/topics/ai.atom?min_quality=50";
  const enc = encodeURIComponent(feed);
  assert.equal(subscribeUrl("feedly", feed), `https://feedly.com/i/subscription/feed/${enc}`);
  assert.equal(subscribeUrl("inoreader", feed), `https://www.inoreader.com/?add_feed=${enc}`);
  assert.equal(subscribeUrl("newsblur", feed), `https://www.newsblur.com/?url=${enc}`);
  assert.equal(subscribeUrl("theoldreader", feed), `https://theoldreader.com/feeds/subscribe?url=${enc}`);
  assert.equal(subscribeUrl("miniflux", feed), null); // needs the instance URL
  assert.equal(subscribeUrl("miniflux", feed, { readerBase: { miniflux: "https://mf.example/" } }), `https://mf.example/bookmarklet?uri=${enc}`);
  assert.equal(subscribeUrl("freshrss", feed, { readerBase: { freshrss: "https://fr.example" } }), `https://fr.example/i/?c=feed&a=add&url_rss=${enc}`);
  assert.equal(subscribeUrl("custom", feed, { customTemplate: "https://r.example/add?u={url}" }), `https://r.example/add?u=${enc}`);
  assert.equal(subscribeUrl("custom", feed, { customTemplate: "javascript:x({url})" }), null);
  assert.equal(subscribeUrl("feedly", "javascript:alert(1)"), null);
  assert.ok(READERS.length >= 7);
});

test("article view keeps text as text and drops non-http links", () => {
  const view = articleView({
    id: "a", title: "  <b>Bold</b>\n title ", link: "https://x.example/a",
    related: [
      { title: "<img src=x onerror=alert(1)>", link: "https://y.example/r", provider: { name: "Y" }, publishedDateTime: "2022-07-18T10:00:00Z", source: "curated" },
      { title: "evil", link: "javascript:alert(1)" },
      { title: "", link: "https://z.example/" },
    ],
    topics: [{ name: "AI", slug: "ai", feeds: { atom: "https://f.example/ai.atom", rss: "data:x", json: "https://f.example/ai.json" } },
      { name: "Bad", slug: "bad", feeds: { atom: "javascript:1" } }],
  });
  assert.equal(view.title, "<b>Bold</b> title");
  assert.deepEqual(view.related.map((r) => r.title), ["<img src=x onerror=alert(1)>"]);
  assert.equal(view.related[0].date, "18 Jul 2022");
  assert.deepEqual(view.topics.map((t) => [t.name, t.feeds.rss]), [["AI", null]]);
});

test("dates and discovered feeds", () => {
  assert.equal(formatDate("not a date"), "");
  assert.equal(formatDate(undefined), "");
  const feeds = discoveredFeeds([
    { href: "/feed.xml", type: "application/rss+xml", title: "Site RSS" },
    { href: "https://p.example/atom", type: "application/atom+xml; charset=utf-8", title: "" },
    { href: "/feed.xml", type: "application/rss+xml", title: "dup" },
    { href: "/style.css", type: "text/css" },
    { href: "javascript:alert(1)", type: "application/rss+xml" },
  ], "https://p.example/article/1");
  assert.deepEqual(feeds.map((f) => f.href), ["https://p.example/feed.xml", "https://p.example/atom"]);
  assert.equal(feeds[1].title, "https://p.example/atom");
});

test("the chosen reader subscribes, with the first reader as the default", () => {
  const feed = "https://f.example/ai.atom";
  assert.deepEqual(readerLink(feed, {}), { name: "Feedly", href: `https://feedly.com/i/subscription/feed/${encodeURIComponent(feed)}` });
  assert.deepEqual(readerLink(feed, { reader: "miniflux" }), { name: "Miniflux", href: null });
  const view = articleView({ title: "t", topics: [{ name: "AI", feeds: { atom: feed } }] }, { reader: "inoreader" });
  assert.equal(view.topics[0].subscribe.href, `https://www.inoreader.com/?add_feed=${encodeURIComponent(feed)}`);
});

test("related items with the same headline appear once, and never the article's own", () => {
  assert.equal(titleKey("  Meta goes open-source!  "), titleKey("META goes open source"));
  assert.equal(titleKey("Ｆｕｌｌ width"), "full width");
  assert.notEqual(titleKey("AI in 2023"), titleKey("AI in 2024"));
  const view = articleView({ title: "The article", related: [
    { title: "Meta goes open source", link: "https://a.example/1", source: "curated" },
    { title: "Meta goes open-source", link: "https://b.example/2", source: "computed" },
    { title: "The article!", link: "https://c.example/3" },
    { title: "Another story", link: "https://d.example/4", images: [{ url: "https://img.example/x.png" }] },
  ] });
  assert.deepEqual(view.related.map((r) => r.href), ["https://a.example/1", "https://d.example/4"]);
  assert.ok(!JSON.stringify(view).includes("img.example"), "no image URLs reach the panel");
});

test("one switch model for built-in and provider sites", () => {
  assert.equal(siteOf("https://www.InfoWorld.com/a"), "infoworld.com");
  assert.equal(siteOf("not a url"), "");
  assert.deepEqual(BUILT_IN_SITES, ["infoworld.com"]);
  const none = { sites: {} };
  assert.deepEqual(siteSwitch(none, "infoworld.com"), { domain: "infoworld.com", on: true, dismissed: false, builtIn: true });
  assert.deepEqual(siteSwitch(none, "news.infoworld.com").domain, "infoworld.com");
  assert.equal(siteSwitch(none, "example.com").on, false);
  let sites = withSite({}, "example.com", { on: true });
  assert.equal(siteSwitch({ sites }, "blog.example.com").on, true);
  sites = withSite(sites, "example.com", { dismissed: true });
  assert.deepEqual(siteSwitch({ sites }, "example.com"), { domain: "example.com", on: true, dismissed: true, builtIn: false });
  sites = withSite(sites, "example.com", { on: true });
  assert.equal(siteSwitch({ sites }, "example.com").dismissed, false, "switching on brings the panel back");
  sites = withSite(sites, "infoworld.com", { on: false });
  assert.equal(siteSwitch({ sites }, "infoworld.com").on, false);
});
