"""WebSub hub: subscriptions, the last distributed document per topic URL, the delivery queue
and recent delivery outcomes (see ``feeds.store.websub``).

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "websub_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("callback", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("lease_seconds", sa.Integer, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("callback", "topic", name="uq_websub_callback_topic"),
    )
    op.create_index("ix_websub_subscriptions_topic", "websub_subscriptions", ["topic"])
    op.create_index("ix_websub_subscriptions_host", "websub_subscriptions", ["host"])
    op.create_table(
        "websub_topics",
        sa.Column("topic", sa.String(2048), primary_key=True),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("changed_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "websub_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subscription_id", sa.Integer),
        sa.Column("callback", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("next_ms", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.String(32)),
        sa.Column("claim_until_ms", sa.BigInteger),
    )
    op.create_index("ix_websub_jobs_due", "websub_jobs", ["next_ms"])
    op.create_index("ix_websub_jobs_subscription", "websub_jobs", ["subscription_id"])
    op.create_table(
        "websub_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("done_ms", sa.BigInteger, nullable=False),
        sa.Column("delay_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_websub_outcomes_done", "websub_outcomes", ["done_ms"])


def downgrade() -> None:
    for table in ("websub_outcomes", "websub_jobs", "websub_topics", "websub_subscriptions"):
        op.drop_table(table)
