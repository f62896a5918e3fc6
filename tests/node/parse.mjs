// Parse each feed URL given on the command line with rss-parser (a widely used Node reader
// library) and print what it understood as JSON: {url: {error} | {title, image, items: [...]}}.
import Parser from "rss-parser";

const parser = new Parser({ timeout: 30000 });
const out = {};
for (const url of process.argv.slice(2)) {
  try {
    const feed = await parser.parseURL(url);
    out[url] = {
      title: feed.title,
      image: feed.image ? feed.image.url : null,
      items: feed.items.map((i) => ({
        id: i.guid || i.id, title: i.title, link: i.link, isoDate: i.isoDate,
        author: i.creator || i.author || null, categories: i.categories || [],
        enclosure: i.enclosure || null, contentSnippet: i.contentSnippet || "", summary: i.summary || "",
        content: i.content || "",
      })),
    };
  } catch (err) {
    out[url] = { error: String(err && err.message || err) };
  }
}
process.stdout.write(JSON.stringify(out));
