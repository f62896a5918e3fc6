"""Display names from the most common spelling (``feeds.store.spellings``): each article's
spelling of each of its topics (``article_topics.name``), and per topic and provider the
articles per spelling (``topic_spellings``, ``provider_spellings``).

Filled from what the index holds: a topic link gets the topic's current display name (the
record's own spelling needs the taxonomy to resolve), a provider its records' own name. The
``taxonomy`` fingerprint is dropped, so the next import re-resolves every record's topics
(as after a taxonomy edit) and stores their own spellings.

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("article_topics", sa.Column("name", sa.Text))
    for table, key in (("topic_spellings", "topic_slug"), ("provider_spellings", "domain")):
        op.create_table(table, sa.Column(key, sa.String(255), primary_key=True),
                        sa.Column("name", sa.Text, primary_key=True), sa.Column("articles", sa.Integer, nullable=False))
    op.execute("UPDATE article_topics SET name = COALESCE((SELECT t.name FROM topics t WHERE t.slug = "
               "article_topics.topic_slug), article_topics.topic_slug)")
    op.execute("INSERT INTO topic_spellings (topic_slug, name, articles) "
               "SELECT topic_slug, name, COUNT(*) FROM article_topics GROUP BY topic_slug, name")
    spelled = ("CAST(record AS json) #>> '{provider,name}'" if op.get_bind().dialect.name == "postgresql"
               else "json_extract(record, '$.provider.name')")
    op.execute(f"INSERT INTO provider_spellings (domain, name, articles) SELECT provider_domain, "
               f"COALESCE({spelled}, provider_domain), COUNT(*) FROM articles GROUP BY 1, 2")
    op.execute("DELETE FROM meta WHERE key = 'taxonomy'")


def downgrade() -> None:
    op.drop_table("provider_spellings")
    op.drop_table("topic_spellings")
    op.drop_column("article_topics", "name")
