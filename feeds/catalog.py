"""Which feeds exist and what each one says: the bridge from the store to ``render``.

Used by the HTTP routes and by the static export alike, so both produce the same bytes.
"""
from __future__ import annotations

import difflib
from urllib.parse import urlencode
from datetime import datetime, timezone

from .errors import UnknownFeed
from .query import FeedQuery
from .render import EPOCH, FeedSpec, OutlineFeed, render_opml
from .store import Store

FORMATS = ("rss", "atom", "json")


def _suggest(key: str, options: list[str]) -> list[str]:
    return difflib.get_close_matches(key.lower(), options, n=3, cutoff=0.6)


def feed_spec(store: Store, scope: str, key: str | None, query: FeedQuery, base_url: str) -> FeedSpec:
    """Spec of /feeds/all, /feeds/topics/<slug> or /feeds/providers/<domain>; raises UnknownFeed."""
    base = base_url.rstrip("/")
    names = store.topic_names()
    image = None
    if scope == "topic":
        assert key is not None
        topic = store.topic(key)
        if topic is None:
            raise UnknownFeed("topic", key, _suggest(key, list(names)) or _suggest(key, [n.lower() for n in names.values()]))
        title = f"{topic.name} news"
        keywords = ", ".join(str(k) for k in topic.data.get("keywords") or [])
        description = f"Articles about {topic.name}" + (f" ({keywords})" if keywords else "")
        images = topic.data.get("images") or []
        image = images[0] if images and isinstance(images[0], str) else None
        path = f"topics/{key}"
    elif scope == "provider":
        assert key is not None
        provider = store.provider(key)
        if provider is None:
            raise UnknownFeed("provider", key, _suggest(key, [p.domain for p in store.providers()]))
        title = f"{provider.name} articles"
        description = str(provider.data.get("description") or f"Articles from {provider.name} ({key})")
        path = f"providers/{key}"
    else:
        title, description, path = "All articles", "Every published article", "all"
    params = urlencode(sorted(query.as_params().items()))
    if params:
        title += " (filtered)"
    return FeedSpec(
        key=path + (f"?{params}" if params else ""), query=params,
        title=title, description=description, self_url=f"{base}/feeds/{path}", home_url=f"{base}/",
        entries=store.recent(scope, key, query), topic_names=names, image=image,
    )


def opml(store: Store, base_url: str, site_title: str) -> bytes:
    """Every topic feed (with articles) as an OPML subscription list."""
    base = base_url.rstrip("/")
    feeds = [OutlineFeed(f"{t.name} news", f"{base}/feeds/topics/{t.slug}.atom", f"{base}/",
                         f"Articles about {t.name}") for t in store.topics() if t.count]
    newest = store.newest_ts()
    created = datetime.fromtimestamp(newest, timezone.utc) if newest else EPOCH
    return render_opml(f"{site_title}: topic feeds", feeds, created)
