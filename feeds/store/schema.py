"""The index's tables as SQLAlchemy Core metadata: what queries are written against.

This is the schema at the migrations' head. Changing it means adding a revision under
``migrations/versions/`` that takes an existing index from the previous head to this one.
"""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text,
                        UniqueConstraint)

metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))

articles = Table(
    "articles", metadata,
    Column("id", String(255), primary_key=True),
    Column("path", Text, nullable=False),
    Column("file_size", BigInteger, nullable=False),
    Column("file_mtime_ns", BigInteger, nullable=False),
    Column("file_sha", String(64), nullable=False),
    Column("public", Boolean, nullable=False),
    Column("published", Boolean, nullable=False),
    Column("duplicate_of", String(255)),
    Column("published_ts", BigInteger, nullable=False),
    Column("norm_url", Text, nullable=False),
    Column("provider_domain", String(255), nullable=False),
    Column("type", String(64), nullable=False),
    Column("quality", Integer),
    Column("heat", Integer),
    Column("search", Text, nullable=False),
    Column("topics", JSON, nullable=False),   # list of slugs
    Column("record", JSON, nullable=False),   # the cleaned record
    Column("curated", JSON, nullable=False),  # normalised URLs of the curated related items
    Column("related", JSON, nullable=False),  # computed related article ids
    Index("ix_articles_public_time", "public", "published_ts", "id"),
    Index("ix_articles_provider_time", "provider_domain", "public", "published_ts", "id"),
    Index("ix_articles_norm_url", "norm_url"),
)

article_topics = Table(
    "article_topics", metadata,
    Column("topic_slug", String(255), nullable=False),
    Column("article_id", String(255), nullable=False),
    Column("public", Boolean, nullable=False),
    Column("published_ts", BigInteger, nullable=False),
    Column("name", Text),  # how the article spells the topic (its first name with this slug)
    Index("ix_topic_time", "topic_slug", "public", "published_ts", "article_id"),
    Index("ix_topic_article", "article_id"),
)

article_urls = Table(
    "article_urls", metadata,
    Column("hash", String(64), nullable=False),
    Column("article_id", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Index("ix_urls_hash", "hash"),
    Index("ix_urls_article", "article_id"),
)

bad_files = Table(
    "bad_files", metadata,
    Column("path", Text, primary_key=True),
    Column("file_size", BigInteger, nullable=False),
    Column("file_mtime_ns", BigInteger, nullable=False),
    Column("line", Integer),
    Column("reason", Text, nullable=False),
)

topics = Table(
    "topics", metadata,
    Column("slug", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("data", JSON, nullable=False),
)

providers = Table(
    "providers", metadata,
    Column("domain", String(255), primary_key=True),
    Column("name", Text, nullable=False),
    Column("data", JSON, nullable=False),
)

# Per topic slug / provider domain, each spelling the stored articles use and how many articles
# use it (``spellings``): a record-only topic's or provider's display name is its most common.
topic_spellings = Table(
    "topic_spellings", metadata,
    Column("topic_slug", String(255), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("articles", Integer, nullable=False),
)

provider_spellings = Table(
    "provider_spellings", metadata,
    Column("domain", String(255), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("articles", Integer, nullable=False),
)

clients = Table(
    "clients", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("key_id", String(32), nullable=False),  # which master key the client's secret derives from
    Column("revoked", Boolean, nullable=False, default=False),
)

admin_tokens = Table(
    "admin_tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("revoked", Boolean, nullable=False, default=False),
)


# Change tracking (``changes``): per article, what its entry showed (digest), when that last
# changed and which feeds it was in; per feed, a version and when its entries last changed.
article_changes = Table(
    "article_changes", metadata,
    Column("article_id", String(255), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("changed_ts", BigInteger, nullable=False),  # Unix seconds
    Column("feeds", JSON, nullable=False),              # feed identities, sorted
)

feed_changes = Table(
    "feed_changes", metadata,
    Column("identity", String(300), primary_key=True),  # all, topics/<slug>, providers/<domain>
    Column("version", Integer, nullable=False),
    Column("changed_ts", BigInteger, nullable=False),   # Unix seconds
)


# The change log (``changes``): one row per committed write, in commit order, naming what it
# changed (feed identities, ``@lists`` when feed membership changed, ``*`` for anything), so a
# process holding rendered documents drops only those (``server.httpcache.RenderCache``).
change_log = Table(
    "change_log", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # 1, 2, … (max + 1 under the write lock)
    Column("version", String(32), nullable=False),                    # the store version it committed
    Column("scope", JSON, nullable=False),                            # sorted strings, see above
)


# WebSub (W3C Recommendation 2018): verified subscriptions, the last document distributed per
# topic URL, the delivery queue and recent outcomes. Times in milliseconds since the epoch.
websub_subscriptions = Table(
    "websub_subscriptions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("callback", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("host", String(255), nullable=False),  # the callback's host, for the per-host cap
    Column("secret", Text),
    Column("lease_seconds", Integer, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("callback", "topic", name="uq_websub_callback_topic"),
    Index("ix_websub_subscriptions_topic", "topic"),
    Index("ix_websub_subscriptions_host", "host"),
)

websub_topics = Table(
    "websub_topics", metadata,
    Column("topic", String(2048), primary_key=True),
    Column("etag", String(64), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("changed_ms", BigInteger, nullable=False),
)

websub_jobs = Table(
    "websub_jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # verify, deliver, deny, publish
    Column("subscription_id", Integer),
    Column("callback", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", JSON, nullable=False),    # mode, secret, lease_seconds, reason
    Column("attempts", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("next_ms", BigInteger, nullable=False),
    Column("claimed_by", String(32)),
    Column("claim_until_ms", BigInteger),
    Index("ix_websub_jobs_due", "next_ms"),
    Index("ix_websub_jobs_subscription", "subscription_id"),
)

websub_outcomes = Table(
    "websub_outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("done_ms", BigInteger, nullable=False),
    Column("delay_ms", BigInteger, nullable=False),  # from enqueueing to the end of the last attempt
    Index("ix_websub_outcomes_done", "done_ms"),
)


# The writer lease (``lease``): the one row (id 1) naming the writer instance that owns the
# write path and until when; times in milliseconds since the epoch.
writer_lease = Table(
    "writer_lease", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("holder", String(64), nullable=False),    # the writer's instance id ("" = nobody yet)
    Column("location", Text, nullable=False),        # host:/instance/folder pid N, for people
    Column("renewed_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
