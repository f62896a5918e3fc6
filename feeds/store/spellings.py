"""How the stored articles spell each topic and provider, and the display name that follows.

Two records may spell one topic differently ("Machine learning", "machine-learning": one slug)
or one provider's name ("Example", "EXAMPLE": one domain). A topic or provider without a
taxonomy file is shown by its most common spelling among the articles that carry it (ties: the
smallest in code-point order), so the name depends on the current content only, not on the
order records were imported in or on which sync saw which record.

The article writes (``put_articles``, ``delete_articles``, ``set_topics``) count the spellings
of the rows they insert (+1) and delete (-1, read back with ``DELETE ... RETURNING``); the
counts are added to ``topic_spellings`` / ``provider_spellings`` (one row per slug or domain
and spelling) before those are read and at commit. Reading the names therefore reads these
small tables, never the articles.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .access import WriteAccess
from .schema import provider_spellings, topic_spellings


def most_common(rows: Iterable[Any]) -> dict[str, str]:
    """key -> display name from (key, spelling, articles) rows: the most articles, then the
    smallest spelling by code points (Python's ``str`` order: the same on every database)."""
    best: dict[str, tuple[int, str]] = {}
    for key, name, count in rows:
        if count > 0 and (key not in best or (-count, name) < (-best[key][0], best[key][1])):
            best[key] = (count, name)
    return {key: name for key, (_, name) in best.items()}


class SpellingWrites(WriteAccess):
    """Mixed into ``Transaction``: spelling counts noted by the article writes, then stored."""

    topic_deltas: Counter[tuple[str, str]]     # (slug, spelling) -> articles added minus removed
    provider_deltas: Counter[tuple[str, str]]  # (domain, spelling) -> idem

    def count_spellings(self, topics: Iterable[tuple[str, str | None]], providers: Iterable[tuple[str, str | None]],
                        sign: int) -> None:
        """Note articles' spellings: (slug, name) per topic link and (domain, name) per article,
        ``sign`` +1 for rows written, -1 for rows removed. A ``None`` name is not counted."""
        for deltas, pairs in ((self.topic_deltas, topics), (self.provider_deltas, providers)):
            for key, name in pairs:
                if name is not None:
                    deltas[key, name] += sign

    def settle_spellings(self) -> None:
        """Add the noted counts to the spelling tables; spellings no article uses any more go."""
        for table, deltas in ((topic_spellings, self.topic_deltas), (provider_spellings, self.provider_deltas)):
            rows = [{"key": k, "name": n, "articles": d} for (k, n), d in sorted(deltas.items()) if d]
            deltas.clear()
            if rows:
                self._add_counts(table, rows)

    def _add_counts(self, table: Table, rows: list[dict[str, Any]]) -> None:
        key = table.c.topic_slug if table is topic_spellings else table.c.domain
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        stmt = stmt.on_conflict_do_update(index_elements=[key.name, "name"],
                                          set_={"articles": table.c.articles + stmt.excluded.articles})
        self.conn.execute(stmt, [{key.name: r["key"], "name": r["name"], "articles": r["articles"]} for r in rows])
        if any(r["articles"] < 0 for r in rows):
            self.conn.execute(delete(table).where(table.c.articles <= 0))

    def spelled_topics(self) -> dict[str, str]:
        """slug -> most common spelling, for every slug some stored article carries."""
        self.settle_spellings()
        return most_common(self.conn.execute(select(topic_spellings)))

    def spelled_providers(self) -> dict[str, str]:
        """domain -> most common spelling of the provider's name, for every domain some stored
        article comes from."""
        self.settle_spellings()
        return most_common(self.conn.execute(select(provider_spellings)))
