"""Per-feed change tracking: ``article_changes`` and ``feed_changes`` (see ``feeds.store.changes``),
and ``meta.created`` (when the index was made: an empty feed's date before anything changed).

The tables start empty: an index upgraded from 0003 serves its feeds dated by their newest
entry, as before, until the next import, which marks every article as first seen.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_changes",
        sa.Column("article_id", sa.String(255), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("changed_ts", sa.BigInteger, nullable=False),
        sa.Column("feeds", sa.JSON, nullable=False),
    )
    op.create_table(
        "feed_changes",
        sa.Column("identity", sa.String(300), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_ts", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM meta WHERE key = 'created'")).scalar() == 0:
        bind.execute(sa.text("INSERT INTO meta (key, value) VALUES ('created', :ts)"), {"ts": str(int(time.time()))})
    # Every file is read again by the next import, so every article gets its change state.
    op.execute("UPDATE articles SET file_sha = '', file_mtime_ns = -1")


def downgrade() -> None:
    op.drop_table("feed_changes")
    op.drop_table("article_changes")
    op.execute("DELETE FROM meta WHERE key = 'created'")
