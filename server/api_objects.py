"""JSON shapes of the API: articles, related items, topics, and their signing order.

Objects are built bottom-up and signed as they are built: each related item, then the
article that holds them, then the collection envelope — so nested ``secured`` fields are
part of their parent's canonical form.
"""
from __future__ import annotations

from typing import Any

from feeds.article import curated_items, title_key
from feeds.entry import Entry, as_int
from feeds.feedspec import FeedRef
from feeds.store import ArticleRow, Store
from feeds.urlnorm import is_http_url, url_hash

from .links import Links
from .signing import Secret, sign_object


def _provider(value: Any) -> dict[str, str]:
    value = value if isinstance(value, dict) else {}
    return {k: str(value[k]) for k in ("name", "domain") if value.get(k)}


def _images(value: Any) -> list[dict[str, Any]]:
    out = []
    for image in value if isinstance(value, list) else []:
        if isinstance(image, dict) and is_http_url(image.get("url")):
            out.append({k: image[k] for k in ("url", "width", "height", "title") if isinstance(image.get(k), (str, int))
                        and not isinstance(image.get(k), bool)})
    return out


def summary_object(entry: Entry, links: Links, url_hashes: dict[str, list[str]]) -> dict[str, Any]:
    """An article without its related list (collections, related items). ``url_hashes`` maps
    article ids to the lookup hashes stored at import (``Store.url_hashes``)."""
    r = entry.record
    obj: dict[str, Any] = {
        "id": entry.article_id,
        "entryId": entry.entry_id,
        "title": entry.title,
        "excerpt": r.get("excerpt") if isinstance(r.get("excerpt"), str) else "",
        "publishedDateTime": r.get("publishedDateTime"),
        "link": entry.link,
        "type": entry.type,
        "quality": entry.quality,
        "heat": entry.heat,
        "provider": _provider(r.get("provider")),
        "topics": [{"slug": slug, "name": name, "feeds": links.feeds(FeedRef("topic", slug))}
                   for slug, name in entry.categories],
        "images": _images(r.get("images")),
        "urlHashes": url_hashes.get(entry.article_id, []),
        **entry.urls,
    }
    if isinstance(r.get("updatedDateTime"), str):
        obj["updatedDateTime"] = r["updatedDateTime"]
    return obj


def curated_related(entry: Entry) -> list[dict[str, Any]]:
    """The record's own ``related`` list as API items (see ``feeds.article.curated_items``)."""
    items = []
    for c in curated_items(entry.record):
        item = c.item
        obj: dict[str, Any] = {"source": "curated", "title": c.title, "link": c.link,
                               "excerpt": str(item.get("excerpt") or ""), "type": str(item.get("type") or "article"),
                               "provider": _provider(item.get("provider")), "images": _images(item.get("images")),
                               "quality": as_int(item.get("quality")), "urlHashes": [url_hash(c.norm_url)]}
        if isinstance(item.get("publishedDateTime"), str):
            obj["publishedDateTime"] = item["publishedDateTime"]
        items.append(obj)
    return items


def article_object(entry: Entry, neighbours: dict[str, Entry], links: Links, url_hashes: dict[str, list[str]],
                   secret: Secret) -> dict[str, Any]:
    """A full, signed article: curated related items first, then computed neighbours; a headline
    already listed (or the article's own) is left out, whatever its URL (``title_key``)."""
    candidates = curated_related(entry)
    for other_id in entry.row.related:
        other = neighbours.get(other_id)
        if other is not None:
            candidates.append({**summary_object(other, links, url_hashes), "source": "computed"})
    seen = {title_key(entry.title)}
    related = []
    for item in candidates:
        key = title_key(str(item["title"]))
        if key not in seen:
            seen.add(key)
            related.append(sign_object(item, secret))
    obj = summary_object(entry, links, url_hashes)
    obj["related"] = related
    if isinstance(entry.record.get("sourceSecured"), str):
        obj["sourceSecured"] = entry.record["sourceSecured"]
    return sign_object(obj, secret)


def article_objects(store: Store, rows: list[ArticleRow], links: Links, secret: Secret, *,
                    full: bool) -> list[dict[str, Any]]:
    """Signed article objects for stored rows, in order; ``full`` adds each one's related list."""
    names = store.topic_names()
    entries = [Entry.of(r, names) for r in rows]
    if not full:
        hashes = store.url_hashes([r.id for r in rows])
        return [sign_object(summary_object(e, links, hashes), secret) for e in entries]
    neighbours = {i: Entry.of(r, names) for i, r in store.articles_by_ids({i for r in rows for i in r.related}).items()}
    hashes = store.url_hashes([r.id for r in rows] + list(neighbours))
    return [article_object(e, neighbours, links, hashes, secret) for e in entries]
