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
from .entrycache import EntryCache
from .errors import UnknownFeed
from .query import DEFAULT_LIMIT, FeedQuery
from .render import FORMATS, FeedSpec, Kept, OutlineFeed, entry_key, render_opml
from .store import Store, provider_identity, topic_identity
from .text import clean_text
from .store.changes import ALL
from .urlnorm import is_http_url

Scope = Literal["all", "topic", "provider"]
_PLURAL = {"topic": "topics", "provider": "providers"}  # path segment of each scope (``parse``)


@dataclass(frozen=True)
class FeedRef:
    """One feed by identity: all articles, one topic (by slug) or one provider (by domain)."""

    scope: Scope
    key: str | None = None

    @property
    def identity(self) -> str:
        """``all``, ``topics/<slug>`` or ``providers/<domain>``: the stable name behind feed ids
        and private feed tokens (never change it: feed ids derive from it)."""
        if self.scope == "all":
            return ALL
        assert self.key is not None
        return topic_identity(self.key) if self.scope == "topic" else provider_identity(self.key)

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

    def icon(self) -> str:
        """The site's square icon (``/favicon.ico``)."""
        ...

    def logo(self) -> str:
        """The site's logo image (PNG: RSS ``<image>`` takes GIF, JPEG or PNG)."""
        ...


def _suggest(key: str, options: list[str]) -> list[str]:
    return difflib.get_close_matches(key.lower(), options, n=3, cutoff=0.6)


def feed_title(ref: FeedRef, name: str | None = None) -> str:
    """A feed's title, the same in the feed, the OPML and autodiscovery: ``All articles``,
    ``<topic name> news``, ``<provider name>`` (as the provider is named as entry author)."""
    if ref.scope == "all":
        return "All articles"
    return f"{name or ref.key} news" if ref.scope == "topic" else str(name or ref.key)


def filter_title(query: FeedQuery) -> str:
    """What a filter selects, for the feed title (``""`` when unfiltered): two filtered feeds
    must not look alike in a reader, e.g. ``type video, quality ≥ 50, latest 200``."""
    parts = []
    if query.q:  # the search text as typed, less what XML cannot carry (a NUL would fail the render)
        parts.append(f"matching “{clean_text(query.q)}”")
    if query.type:
        parts.append(f"type {query.type}")
    if query.min_quality is not None:
        parts.append(f"quality ≥ {query.min_quality}")
    if query.min_heat is not None:
        parts.append(f"heat ≥ {query.min_heat}")
    if query.limit != DEFAULT_LIMIT:
        parts.append(f"latest {query.limit}")
    return ", ".join(parts)


def _image(data: Mapping[str, object]) -> str | None:
    """The first http(s) image a topic or organisation file gives (a URL or {url: …})."""
    images = data.get("images") or data.get("image") or data.get("logo") or []
    for image in images if isinstance(images, list) else [images]:
        url = image.get("url") if isinstance(image, dict) else image
        if is_http_url(url):
            return str(url)
    return None


def feed_spec(store: Store, ref: FeedRef, query: FeedQuery, links: LinkBuilder,
              entry_cache: EntryCache | None = None, ext: str | None = None) -> FeedSpec:
    """What the feed ``ref`` filtered by ``query`` says; raises ``UnknownFeed`` with close matches.

    Its date is the store's change time of the unfiltered feed (``Store.feed_changes``): a
    filtered view changes no more often than the feed it filters. With an ``entry_cache`` and
    the format ``ext`` it will be rendered in, entries an earlier render of that format built
    for the same article version are reused (their rows are not read) and new ones are kept.
    The taxonomy's names are read only when some entry is built here, the store's creation
    time only for an untracked feed (what dates it when it has no entries)."""
    image = None
    if ref.scope == "topic":
        assert ref.key is not None
        topic = store.topic(ref.key)
        if topic is None:
            names = store.topic_names()
            raise UnknownFeed("topic", ref.key,
                              _suggest(ref.key, list(names)) or _suggest(ref.key, [n.lower() for n in names.values()]))
        title = feed_title(ref, topic.name)
        keywords = ", ".join(str(k) for k in topic.data.get("keywords") or [])
        description = f"Articles about {topic.name}" + (f" ({keywords})" if keywords else "")
        image = _image(topic.data)
    elif ref.scope == "provider":
        assert ref.key is not None
        provider = store.provider(ref.key)
        if provider is None:
            raise UnknownFeed("provider", ref.key, _suggest(ref.key, [p.domain for p in store.providers()]))
        title = feed_title(ref, provider.name)
        description = str(provider.data.get("description") or f"Articles from {provider.name} ({ref.key})")
        image = _image(provider.data)
    else:
        title, description = feed_title(ref), "Every published article"
    params = query.as_params()
    described = filter_title(query)
    if described:
        title += f" ({described})"
    state = store.feed_changes([ref.identity]).get(ref.identity)
    scheme = links.home()
    kept: dict[str, object] = {}

    def reuse(article_id: str, version: str) -> bool:
        fragment = entry_cache.get(entry_key(article_id, version, ext or "", scheme)) if entry_cache is not None else None
        if fragment is not None:
            kept[article_id] = fragment
        return fragment is not None

    # an untracked feed is dated by its newest entry, so every entry must be read
    reusing = entry_cache is not None and ext is not None and state is not None
    rows = store.recent_reusing(ref.scope, ref.key, query, reuse if reusing else None)
    names: dict[str, str] = {}
    provider_names: dict[str, str] = {}
    if any(row is not None for _, row in rows):
        names, provider_names = store.topic_names(), store.provider_names()
    return FeedSpec(
        identity=ref.identity + (f"?{_identity_query(params)}" if params else ""),
        title=title, description=description,
        self_links={f: links.feed(ref, f, params) for f in FORMATS}, home_url=scheme,
        entries=[Kept(i, kept[i]) if row is None else Entry.of(row, names, provider_names) for i, row in rows],
        icon=links.icon(), logo=image or links.logo(), category_scheme=scheme,
        changed_at=state.changed_at if state else None, created_at=None if state else store.created(),
        entry_cache=entry_cache if reusing else None,
    )


def _identity_query(params: Mapping[str, str]) -> str:
    """The filter part of a filtered feed's identity (its id must differ from the unfiltered one's
    and stay what earlier versions derived: ``urlencode`` of the sorted parameters)."""
    return urlencode(sorted(params.items()))


def opml(store: Store, links: LinkBuilder, site_title: str) -> bytes:
    """Every topic feed (with articles) as an OPML 2.0 subscription list."""
    refs = [(FeedRef("topic", t.slug), t.name, f"Articles about {t.name}") for t in store.topics() if t.count]
    return _opml(store, links, f"{site_title}: topic feeds", refs)


def provider_opml(store: Store, links: LinkBuilder, site_title: str) -> bytes:
    """Every provider feed (with articles) as OPML: these feeds never share an article, so a
    reader that keeps one copy per entry id across feeds (newsboat) shows each one complete."""
    refs = [(FeedRef("provider", p.domain), p.name, f"Articles from {p.name} ({p.domain})")
            for p in store.providers() if p.count]
    return _opml(store, links, f"{site_title}: provider feeds", refs)


def _opml(store: Store, links: LinkBuilder, title: str, refs: list[tuple[FeedRef, str, str]]) -> bytes:
    """OPML 2.0 of Atom feeds, dated when the newest of them last changed."""
    states = store.feed_changes([ref.identity for ref, _, _ in refs])
    newest = max((s.changed_at for s in states.values()), default=None)
    if newest is None:
        ts = store.newest_ts()
        newest = datetime.fromtimestamp(ts, timezone.utc) if ts else store.created() or EPOCH
    feeds = [OutlineFeed(feed_title(ref, name), links.feed(ref, "atom"), links.home(), description)
             for ref, name, description in refs]
    return render_opml(title, feeds, newest)
