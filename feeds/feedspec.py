"""Which feeds exist and what each one says: the bridge from the store to ``render``.

Used by the HTTP routes and by the static export alike, so both produce the same bytes. This
module knows feeds by identity (``FeedRef``); the URLs they live at come from the caller's
``LinkBuilder`` (the server's routes), so the domain never knows the route layout.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Protocol
from urllib.parse import urlencode

from .entry import EPOCH, Entry
from .errors import UnknownFeed
from .query import FeedQuery
from .render import FORMATS, FeedSpec, OutlineFeed, render_opml
from .store import Store

Scope = Literal["all", "topic", "provider"]
_PLURAL = {"topic": "topics", "provider": "providers"}


@dataclass(frozen=True)
class FeedRef:
    """One feed by identity: all articles, one topic (by slug) or one provider (by domain)."""

    scope: Scope
    key: str | None = None

    @property
    def identity(self) -> str:
        """``all``, ``topics/<slug>`` or ``providers/<domain>``: the stable name behind feed ids
        and private feed tokens (never change it: feed ids derive from it)."""
        return "all" if self.scope == "all" else f"{_PLURAL[self.scope]}/{self.key}"

    @classmethod
    def parse(cls, identity: str) -> FeedRef:
        """Read ``all``, ``topics/<slug>`` or ``providers/<domain>`` (a leading ``/feeds/`` and a
        format extension are ignored); raises ``ValueError`` naming the accepted forms."""
        path = identity.strip("/").removeprefix("feeds/")
        for ext in FORMATS:
            path = path.removesuffix("." + ext)
        if path == "all":
            return cls("all")
        kind, _, key = path.partition("/")
        scope = next((s for s, plural in _PLURAL.items() if plural == kind), None)
        if scope and key and "/" not in key:
            return cls(scope, key)  # type: ignore[arg-type]
        raise ValueError(f"not a feed: {identity[:80]!r} (use all, topics/<slug> or providers/<domain>)")


class LinkBuilder(Protocol):
    """Absolute URLs of feeds and the home page (the server's ``links.Links``)."""

    def feed(self, ref: FeedRef, ext: str, params: Mapping[str, str] | None = None) -> str: ...

    def home(self) -> str: ...


def _suggest(key: str, options: list[str]) -> list[str]:
    return difflib.get_close_matches(key.lower(), options, n=3, cutoff=0.6)


def feed_spec(store: Store, ref: FeedRef, query: FeedQuery, links: LinkBuilder) -> FeedSpec:
    """What the feed ``ref`` filtered by ``query`` says; raises ``UnknownFeed`` with close matches."""
    names = store.topic_names()
    image = None
    if ref.scope == "topic":
        assert ref.key is not None
        topic = store.topic(ref.key)
        if topic is None:
            raise UnknownFeed("topic", ref.key,
                              _suggest(ref.key, list(names)) or _suggest(ref.key, [n.lower() for n in names.values()]))
        title = f"{topic.name} news"
        keywords = ", ".join(str(k) for k in topic.data.get("keywords") or [])
        description = f"Articles about {topic.name}" + (f" ({keywords})" if keywords else "")
        images = topic.data.get("images") or []
        image = images[0] if images and isinstance(images[0], str) else None
    elif ref.scope == "provider":
        assert ref.key is not None
        provider = store.provider(ref.key)
        if provider is None:
            raise UnknownFeed("provider", ref.key, _suggest(ref.key, [p.domain for p in store.providers()]))
        title = f"{provider.name} articles"
        description = str(provider.data.get("description") or f"Articles from {provider.name} ({ref.key})")
    else:
        title, description = "All articles", "Every published article"
    params = query.as_params()
    if params:
        title += " (filtered)"
    return FeedSpec(
        identity=ref.identity + (f"?{_identity_query(params)}" if params else ""),
        title=title, description=description,
        self_links={ext: links.feed(ref, ext, params) for ext in FORMATS}, home_url=links.home(),
        entries=[Entry.of(row, names) for row in store.recent(ref.scope, ref.key, query)], image=image,
    )


def _identity_query(params: Mapping[str, str]) -> str:
    """The filter part of a filtered feed's identity (its id must differ from the unfiltered one's
    and stay what earlier versions derived: ``urlencode`` of the sorted parameters)."""
    return urlencode(sorted(params.items()))


def opml(store: Store, links: LinkBuilder, site_title: str) -> bytes:
    """Every topic feed (with articles) as an OPML 2.0 subscription list."""
    home = links.home()
    feeds = [OutlineFeed(f"{t.name} news", links.feed(FeedRef("topic", t.slug), "atom"), home,
                         f"Articles about {t.name}") for t in store.topics() if t.count]
    newest = store.newest_ts()
    created = datetime.fromtimestamp(newest, timezone.utc) if newest else EPOCH
    return render_opml(f"{site_title}: topic feeds", feeds, created)
