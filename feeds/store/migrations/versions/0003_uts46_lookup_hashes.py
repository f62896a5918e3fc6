"""URL normalisation follows UTS #46 (as browsers do) instead of IDNA 2003: recompute what was
derived from URLs — the lookup table, ``norm_url`` and the curated related URLs — from the
stored records, so lookups find internationalised hosts at once; and mark every file as
changed, so the next import re-reads each record under the new record rules (YAML 1.2 core,
range checks) and re-resolves topics and duplicates.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from feeds.article import article_link, curated_items, lookup_hashes
from feeds.urlnorm import normalize_url

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 1000


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, record, norm_url FROM articles")).all()
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        urls, updates = [], []
        for article_id, record, old_norm in batch:
            record = _json(record)
            if not isinstance(record, dict):
                continue
            link = article_link(record)
            try:
                norm = normalize_url(link) if link else old_norm
            except ValueError:
                norm = old_norm
            curated = json.dumps(sorted({c.norm_url for c in curated_items(record)}), separators=(",", ":"))
            updates.append({"id": article_id, "norm": norm, "curated": curated})
            urls += [{"hash": h, "article_id": article_id, "url": u} for h, u in lookup_hashes(record).items()]
        ids = [u["id"] for u in updates]
        bind.execute(sa.text("DELETE FROM article_urls WHERE article_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)), {"ids": ids})
        if urls:
            bind.execute(sa.text("INSERT INTO article_urls (hash, article_id, url) VALUES (:hash, :article_id, :url)"),
                         urls)
        cast = "CAST(:curated AS json)" if bind.dialect.name == "postgresql" else ":curated"
        bind.execute(sa.text(f"UPDATE articles SET norm_url = :norm, curated = {cast}, file_sha = '', "
                             "file_mtime_ns = -1 WHERE id = :id"), updates)


def downgrade() -> None:
    """Nothing to undo structurally; the next import under the older version re-derives its own."""
    op.execute("UPDATE articles SET file_sha = '', file_mtime_ns = -1")
