"""JSON shapes of the API: articles, related items, topics, and their signing order.

Objects are built bottom-up and signed as they are built: each related item, then the
article that holds them, then the collection envelope — so nested ``secured`` fields are
part of their parent's canonical form.
"""
from __future__ import annotations

from typing import Any

from feeds.render import article_link, entry_id
from feeds.store import ArticleRow
from feeds.urlnorm import is_http_url, normalize_url, url_hash

from .signing import Secret, sign_object
from .urls import feed_urls

URL_FIELDS = ("webUrl", "originalUrl", "ampWebUrl", "cdnAmpWebUrl")


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


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def url_hashes(record: dict[str, Any]) -> list[str]:
    """Lookup hashes of every URL the article is reachable by (the client matches locally)."""
    hashes = []
    for key in URL_FIELDS:
        try:
            h = url_hash(normalize_url(record[key]))
        except (KeyError, ValueError, TypeError, AttributeError):
            continue
        if h not in hashes:
            hashes.append(h)
    return hashes


def summary_object(row: ArticleRow, names: dict[str, str]) -> dict[str, Any]:
    """An article without its related list (collections, related items)."""
    r = row.record
    obj: dict[str, Any] = {
        "id": row.id,
        "entryId": entry_id(row.id),
        "title": r.get("title") or "",
        "excerpt": r.get("excerpt") if isinstance(r.get("excerpt"), str) else "",
        "publishedDateTime": r.get("publishedDateTime"),
        "link": article_link(r),
        "type": r.get("type") or "article",
        "quality": _int(r.get("quality")),
        "heat": _int(r.get("heat")),
        "provider": _provider(r.get("provider")),
        "topics": [{"slug": s, "name": names.get(s, s), "feeds": feed_urls(f"topics/{s}")} for s in row.topics],
        "images": _images(r.get("images")),
        "urlHashes": url_hashes(r),
    }
    obj.update({k: r[k] for k in URL_FIELDS if is_http_url(r.get(k))})
    if isinstance(r.get("updatedDateTime"), str):
        obj["updatedDateTime"] = r["updatedDateTime"]
    return obj


def curated_related(row: ArticleRow) -> list[dict[str, Any]]:
    """The record's own ``related`` list: http(s) items, no self references, no URL duplicates."""
    record = row.record
    own_urls = {normalize_url(record[k]) for k in URL_FIELDS if is_http_url(record.get(k))}
    own_title = (record.get("title") or "").strip().lower()
    seen: set[str] = set()
    items = []
    for item in record.get("related") or []:
        if not isinstance(item, dict):
            continue
        link = next((item[k] for k in ("webUrl", "originalUrl") if is_http_url(item.get(k))), None)
        title = str(item.get("title") or "").strip()
        if not link or not title:
            continue
        norm = normalize_url(link)
        if norm in own_urls or norm in seen or title.lower() == own_title:
            continue
        seen.add(norm)
        obj: dict[str, Any] = {"source": "curated", "title": title, "link": link.strip(),
                               "excerpt": str(item.get("excerpt") or ""), "type": str(item.get("type") or "article"),
                               "provider": _provider(item.get("provider")), "images": _images(item.get("images")),
                               "quality": _int(item.get("quality")), "urlHashes": [url_hash(norm)]}
        if isinstance(item.get("publishedDateTime"), str):
            obj["publishedDateTime"] = item["publishedDateTime"]
        items.append(obj)
    return items


def article_object(row: ArticleRow, neighbours: dict[str, ArticleRow], names: dict[str, str],
                   secret: Secret) -> dict[str, Any]:
    """A full, signed article: curated related items first, then computed neighbours."""
    related = [sign_object(item, secret) for item in curated_related(row)]
    for other_id in row.related:
        other = neighbours.get(other_id)
        if other is not None:
            related.append(sign_object({**summary_object(other, names), "source": "computed"}, secret))
    obj = summary_object(row, names)
    obj["related"] = related
    if isinstance(row.record.get("sourceSecured"), str):
        obj["sourceSecured"] = row.record["sourceSecured"]
    return sign_object(obj, secret)
