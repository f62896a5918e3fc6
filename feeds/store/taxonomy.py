"""Topics and providers: the taxonomy files plus names only seen in records, with counts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select

from .access import Access
from .changes import ChangeWrites, provider_identity, topic_identity
from .schema import article_topics, articles, providers, topics


@dataclass(frozen=True, slots=True)
class Topic:
    """``data`` is the taxonomy file's mapping ({} for a topic only records name); ``count``
    is the number of public articles, filled by ``topics()`` only (0 elsewhere: not counted)."""

    slug: str
    name: str
    data: dict[str, Any]
    count: int = 0


@dataclass(frozen=True, slots=True)
class Provider:
    """Like ``Topic``, for an organisation (keyed by domain)."""

    domain: str
    name: str
    data: dict[str, Any]
    count: int = 0


class TaxonomyReads(Access):
    """Topic and provider reads."""

    def counted_topics(self) -> list[Topic]:
        """Every topic in taxonomy order (then slugs only seen in records) with its public count."""
        with self._conn() as conn:
            counts: dict[str, int] = dict(conn.execute(  # type: ignore[arg-type]
                select(article_topics.c.topic_slug, func.count()).where(article_topics.c.public.is_(True))
                .group_by(article_topics.c.topic_slug)).all())
            return [Topic(r.slug, r.name, r.data, counts.get(r.slug, 0))
                    for r in conn.execute(select(topics).order_by(topics.c.position, topics.c.slug))]

    def counted_providers(self) -> list[Provider]:
        """Every provider by domain with its public count."""
        with self._conn() as conn:
            counts: dict[str, int] = dict(conn.execute(  # type: ignore[arg-type]
                select(articles.c.provider_domain, func.count()).where(articles.c.public.is_(True))
                .group_by(articles.c.provider_domain)).all())
            return [Provider(r.domain, r.name, r.data, counts.get(r.domain, 0))
                    for r in conn.execute(select(providers).order_by(providers.c.domain))]

    def topic_names(self) -> dict[str, str]:
        """slug -> display name (no counting: feeds need only the names)."""
        with self._conn() as conn:
            return dict(conn.execute(select(topics.c.slug, topics.c.name)).all())  # type: ignore[arg-type]

    def provider_names(self) -> dict[str, str]:
        """domain -> display name."""
        with self._conn() as conn:
            return dict(conn.execute(select(providers.c.domain, providers.c.name)).all())  # type: ignore[arg-type]

    def topic(self, slug: str) -> Topic | None:
        """One topic, not counted; None if unknown."""
        with self._conn() as conn:
            row = conn.execute(select(topics).where(topics.c.slug == slug)).first()
        return Topic(row.slug, row.name, row.data) if row else None

    def provider(self, domain: str) -> Provider | None:
        """One provider, not counted; None if unknown."""
        with self._conn() as conn:
            row = conn.execute(select(providers).where(providers.c.domain == domain)).first()
        return Provider(row.domain, row.name, row.data) if row else None


class TaxonomyWrites(ChangeWrites):
    """Rebuilding the topic and provider tables at import."""

    def replace_taxonomy(self, topic_list: list[Topic], provider_list: list[Provider]) -> None:
        """Replace both tables; topics keep the given order (counts are ignored: they are computed).
        Topics and providers whose name or data changed are noted for change tracking."""
        old_topics = {r.slug: (r.name, r.data) for r in self.conn.execute(select(topics))}
        old_providers = {r.domain: (r.name, r.data) for r in self.conn.execute(select(providers))}
        new_topics = {t.slug: (t.name, t.data) for t in topic_list}
        new_providers = {p.domain: (p.name, p.data) for p in provider_list}
        self.note_feeds(topic_identity(s) for s in old_topics.keys() | new_topics.keys()
                        if old_topics.get(s) != new_topics.get(s))
        self.note_feeds(provider_identity(d) for d in old_providers.keys() | new_providers.keys()
                        if old_providers.get(d) != new_providers.get(d))
        # an entry shows a topic by its taxonomy name, by its slug when the taxonomy lacks it:
        # a topic added or removed renames its articles' category too
        self.note_topics_renamed(s for s in old_topics.keys() | new_topics.keys()
                                 if old_topics.get(s, (s,))[0] != new_topics.get(s, (s,))[0])
        # a provider's taxonomy name is every one of its entries' author, in all and topic feeds too
        self.note_providers_renamed(d for d in old_providers.keys() | new_providers.keys()
                                    if old_providers.get(d, (None,))[0] != new_providers.get(d, (None,))[0])
        self.conn.execute(delete(topics))
        self.conn.execute(delete(providers))
        if topic_list:
            self.conn.execute(insert(topics), [{"slug": t.slug, "position": i, "name": t.name, "data": t.data}
                                               for i, t in enumerate(topic_list)])
        if provider_list:
            self.conn.execute(insert(providers), [{"domain": p.domain, "name": p.name, "data": p.data}
                                                  for p in provider_list])
