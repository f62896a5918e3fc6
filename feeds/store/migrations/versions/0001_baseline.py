"""Baseline: the schema as it was before migrations (meta.schema = "2").

Indexes made by that code have no ``alembic_version`` table; ``feeds.store.migrate`` stamps
them with this revision instead of running it.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text, nullable=False))
    op.create_table(
        "articles",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("file_mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("file_sha", sa.String(64), nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.Column("duplicate_of", sa.String(255)),
        sa.Column("published_ts", sa.BigInteger, nullable=False),
        sa.Column("norm_url", sa.Text, nullable=False),
        sa.Column("provider_domain", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer),
        sa.Column("heat", sa.Integer),
        sa.Column("search", sa.Text, nullable=False),
        sa.Column("topics", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("curated", sa.Text, nullable=False),
        sa.Column("related", sa.Text, nullable=False),
    )
    op.create_index("ix_articles_public_time", "articles", ["public", "published_ts", "id"])
    op.create_index("ix_articles_provider_time", "articles", ["provider_domain", "public", "published_ts", "id"])
    op.create_index("ix_articles_norm_url", "articles", ["norm_url"])
    op.create_table(
        "article_topics",
        sa.Column("topic_slug", sa.String(255), nullable=False),
        sa.Column("article_id", sa.String(255), nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("published_ts", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_topic_time", "article_topics", ["topic_slug", "public", "published_ts", "article_id"])
    op.create_index("ix_topic_article", "article_topics", ["article_id"])
    op.create_table(
        "article_urls",
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("article_id", sa.String(255), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
    )
    op.create_index("ix_urls_hash", "article_urls", ["hash"])
    op.create_index("ix_urls_article", "article_urls", ["article_id"])
    op.create_table(
        "bad_files",
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("file_mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("line", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "topics",
        sa.Column("slug", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "providers",
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "clients",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.execute("INSERT INTO meta (key, value) VALUES ('schema', '2')")


def downgrade() -> None:
    for table in ("clients", "providers", "topics", "bad_files", "article_urls", "article_topics", "articles", "meta"):
        op.drop_table(table)
