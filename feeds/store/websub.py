"""WebSub hub state (W3C WebSub Recommendation, 2018): verified subscriptions, the last document
distributed per topic URL, the delivery queue and recent outcomes.

These writes never bump the store version (``Store.write()``): they are not content, and a
delivery must not invalidate every reader's cache. Every claim on a queued job goes through the
database, so several server processes and an import process deliver each job once: on
PostgreSQL ``FOR UPDATE SKIP LOCKED``, on SQLite one ``UPDATE … WHERE claim expired`` (SQLite
runs writers one at a time, so the statement is the lock). A claim is a lease: a process that
dies mid-delivery leaves a job another process takes again once the lease has run out.

Times are milliseconds since the Unix epoch.
"""
from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine

from .schema import websub_jobs as jobs
from .schema import websub_outcomes as outcomes
from .schema import websub_subscriptions as subs
from .schema import websub_topics as topics


def now_ms() -> int:
    return int(time.time() * 1000)


class Subscription(NamedTuple):
    id: int
    callback: str
    topic: str
    host: str
    secret: str | None
    lease_seconds: int
    expires_ms: int
    created_ms: int


class Job(NamedTuple):
    """One queued request to make: ``verify`` (GET with a challenge), ``deny`` (GET with
    ``hub.mode=denied``), ``deliver`` (POST the topic's latest document) or ``publish`` (POST a
    publish ping to an external hub)."""

    id: int
    kind: str
    subscription_id: int | None
    callback: str
    topic: str
    payload: dict[str, Any]
    attempts: int
    created_ms: int
    claimed_by: str
    secret: str | None = None        # of the subscription a ``deliver`` job is for
    expires_ms: int | None = None    # its lease end; None when it no longer exists


class TopicDoc(NamedTuple):
    """The last document distributed for a topic URL."""

    etag: str
    content_type: str
    body: bytes


def _sub(r: Any) -> Subscription:
    return Subscription(r.id, r.callback, r.topic, r.host, r.secret, r.lease_seconds, r.expires_ms, r.created_ms)


class WebSubStore:
    """The hub's tables on the store's engine (``Store.websub``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _insert(self, table: Any) -> Any:
        """An INSERT that can skip a row whose key exists (both dialects spell it the same)."""
        # imported here: the PostgreSQL dialect package (with its asyncpg module) cost every
        # CLI start, also an import's, about 0.1 s
        from sqlalchemy.dialects import postgresql, sqlite

        return (postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert)(table)

    # subscriptions ---------------------------------------------------------------------------

    def subscriptions(self, topic: str | None = None) -> list[Subscription]:
        """Every stored subscription (expired ones until the next ``expire``), oldest first."""
        query = select(subs).order_by(subs.c.id)
        if topic is not None:
            query = query.where(subs.c.topic == topic)
        with self._engine.connect() as conn:
            return [_sub(r) for r in conn.execute(query)]

    def subscribed_topics(self) -> list[str]:
        """Topic URLs with at least one unexpired subscription."""
        with self._engine.connect() as conn:
            return list(conn.execute(select(subs.c.topic).where(subs.c.expires_ms > now_ms()).distinct()).scalars())

    def activate(self, callback: str, topic: str, host: str, secret: str | None, lease_seconds: int,
                 max_per_host: int, max_total: int) -> str | None:
        """Create or renew (new secret and lease) a verified subscription. Returns None, or why it
        is denied: a new subscription beyond the per-host or total cap."""
        now = now_ms()
        values = {"secret": secret, "lease_seconds": lease_seconds, "expires_ms": now + lease_seconds * 1000}
        with self._engine.begin() as conn:
            renewed = conn.execute(update(subs).where(subs.c.callback == callback, subs.c.topic == topic)
                                   .values(**values)).rowcount
            if renewed:
                return None
            live = subs.c.expires_ms > now
            if (conn.execute(select(func.count()).select_from(subs).where(live, subs.c.host == host)).scalar() or 0) >= max_per_host:
                return f"too many subscriptions for callback host {host} (at most {max_per_host})"
            if (conn.execute(select(func.count()).select_from(subs).where(live)).scalar() or 0) >= max_total:
                return f"this hub holds its maximum of {max_total} subscriptions"
            # an upsert: another verification of the same pair may have inserted it since the
            # UPDATE above (READ COMMITTED on PostgreSQL), and then this one renews it
            conn.execute(self._insert(subs).values(callback=callback, topic=topic, host=host, created_ms=now, **values)
                         .on_conflict_do_update(index_elements=["callback", "topic"], set_=values))
        return None

    def unsubscribe(self, callback: str, topic: str) -> bool:
        """End a subscription (and drop its queued deliveries); False when there was none."""
        with self._engine.begin() as conn:
            ids = list(conn.execute(select(subs.c.id).where(subs.c.callback == callback, subs.c.topic == topic)).scalars())
            return self._drop(conn, ids) > 0

    def remove(self, subscription_id: int) -> bool:
        """``topicfeed websub remove``: drop a subscription and its queued deliveries."""
        with self._engine.begin() as conn:
            return self._drop(conn, [subscription_id]) > 0

    @staticmethod
    def _drop(conn: Connection, ids: list[int]) -> int:
        if not ids:
            return 0
        conn.execute(delete(jobs).where(jobs.c.subscription_id.in_(ids)))
        return conn.execute(delete(subs).where(subs.c.id.in_(ids))).rowcount

    def expire(self, keep_outcomes_ms: int = 24 * 3600 * 1000) -> int:
        """Drop subscriptions whose lease has run out (no notice: the subscriber knew the lease)
        and outcomes older than ``keep_outcomes_ms``."""
        with self._engine.begin() as conn:
            conn.execute(delete(outcomes).where(outcomes.c.done_ms < now_ms() - keep_outcomes_ms))
            ids = list(conn.execute(select(subs.c.id).where(subs.c.expires_ms <= now_ms())).scalars())
            return self._drop(conn, ids)

    def end_topic(self, topic: str, reason: str) -> int:
        """A topic that no longer exists: queue a denial notice to each subscriber, then drop them."""
        with self._engine.begin() as conn:
            ended = [_sub(r) for r in conn.execute(select(subs).where(subs.c.topic == topic))]
            for sub in ended:
                self._enqueue(conn, "deny", sub.callback, topic, {"reason": reason})
            self._drop(conn, [s.id for s in ended])
            conn.execute(delete(topics).where(topics.c.topic == topic))
        return len(ended)

    # topic documents -------------------------------------------------------------------------

    def topic_doc(self, topic: str) -> TopicDoc | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(topics.c.etag, topics.c.content_type, topics.c.body)
                               .where(topics.c.topic == topic)).first()
        return TopicDoc(row.etag, row.content_type, bytes(row.body)) if row else None

    def baseline(self, topic: str, doc: TopicDoc) -> None:
        """Remember ``doc`` as what subscribers of ``topic`` have, unless a document is recorded."""
        with self._engine.begin() as conn:
            conn.execute(self._insert(topics).values(topic=topic, changed_ms=now_ms(), **doc._asdict())
                         .on_conflict_do_nothing(index_elements=["topic"]))

    def record_change(self, topic: str, old_etag: str, doc: TopicDoc, publish: Iterable[tuple[str, str]] = ()) -> int:
        """Replace ``topic``'s document if it is still ``old_etag`` (compare-and-set: of several
        processes that noticed one change, one wins) and queue its distribution in the same
        transaction: a ``deliver`` job for each live subscriber without one pending (one POST per
        burst; the job sends the latest document when it runs), and a ``publish`` job for each
        (hub, url) in ``publish``. Returns the number of jobs queued, or -1 when another process won."""
        now = now_ms()
        publish = list(publish)
        with self._engine.begin() as conn:
            won = conn.execute(update(topics).where(topics.c.topic == topic, topics.c.etag == old_etag)
                               .values(changed_ms=now, **doc._asdict())).rowcount
            if not won:
                return -1
            pending = select(jobs.c.subscription_id).where(jobs.c.kind == "deliver", jobs.c.claimed_by.is_(None),
                                                           jobs.c.subscription_id.is_not(None))
            targets = conn.execute(select(subs.c.id, subs.c.callback).where(
                subs.c.topic == topic, subs.c.expires_ms > now, subs.c.id.not_in(pending))).all()
            for sub_id, callback in targets:
                self._enqueue(conn, "deliver", callback, topic, {}, subscription_id=sub_id)
            for hub, url in publish:
                self._enqueue(conn, "publish", hub, url, {})
        return len(targets) + len(publish)

    # the queue -------------------------------------------------------------------------------

    def enqueue(self, kind: str, callback: str, topic: str, payload: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            self._enqueue(conn, kind, callback, topic, payload)

    @staticmethod
    def _enqueue(conn: Connection, kind: str, callback: str, topic: str, payload: dict[str, Any],
                 subscription_id: int | None = None) -> None:
        now = now_ms()
        conn.execute(insert(jobs).values(kind=kind, subscription_id=subscription_id, callback=callback, topic=topic,
                                         payload=payload, attempts=0, created_ms=now, next_ms=now))

    def claim(self, limit: int, lease_ms: int) -> list[Job]:
        """Take up to ``limit`` due jobs no live claim holds, for ``lease_ms``."""
        now = now_ms()
        token = secrets.token_hex(16)
        claimable = and_(jobs.c.next_ms <= now, or_(jobs.c.claim_until_ms.is_(None), jobs.c.claim_until_ms < now))
        due = select(jobs.c.id).where(claimable).order_by(jobs.c.next_ms, jobs.c.id).limit(limit)
        if self._engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        with self._engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id.in_(due.scalar_subquery()), claimable)
                         .values(claimed_by=token, claim_until_ms=now + lease_ms))
            rows = conn.execute(select(jobs, subs.c.secret, subs.c.expires_ms)
                                .select_from(jobs.outerjoin(subs, subs.c.id == jobs.c.subscription_id))
                                .where(jobs.c.claimed_by == token).order_by(jobs.c.id)).all()
        return [Job(r.id, r.kind, r.subscription_id, r.callback, r.topic, dict(r.payload), r.attempts,
                    r.created_ms, token, r.secret, r.expires_ms) for r in rows]

    def done(self, finished: list[Job], ok: bool) -> None:
        """The jobs succeeded (``ok``) or were given up: drop them and record the outcomes, in one
        transaction (a batch of deliveries costs one write). A job whose claim ran out is left alone."""
        if not finished:
            return
        now = now_ms()
        with self._engine.begin() as conn:
            for job in finished:
                if conn.execute(delete(jobs).where(jobs.c.id == job.id, jobs.c.claimed_by == job.claimed_by)).rowcount:
                    conn.execute(insert(outcomes).values(kind=job.kind, ok=ok, done_ms=now,
                                                         delay_ms=now - job.created_ms))

    def retry(self, job: Job, at_ms: int) -> None:
        """Release the claim; the job is due again at ``at_ms``."""
        with self._engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job.id, jobs.c.claimed_by == job.claimed_by)
                         .values(attempts=job.attempts + 1, next_ms=at_ms, claimed_by=None, claim_until_ms=None))

    def queued(self) -> int:
        with self._engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(jobs)).scalar() or 0

    # health ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Counts for /healthz: live subscriptions, queued jobs, deliveries and failures (given-up
        jobs of any kind) recorded in the last day, and the median enqueue→delivered delay."""
        now = now_ms()
        with self._engine.connect() as conn:
            live = conn.execute(select(func.count()).select_from(subs).where(subs.c.expires_ms > now)).scalar() or 0
            queued = conn.execute(select(func.count()).select_from(jobs)).scalar() or 0
            delays = list(conn.execute(select(outcomes.c.delay_ms).where(outcomes.c.kind == "deliver",
                                                                         outcomes.c.ok.is_(True))).scalars())
            failures = conn.execute(select(func.count()).select_from(outcomes)
                                    .where(outcomes.c.ok.is_(False))).scalar() or 0
        return {"subscriptions": live, "queued": queued, "deliveries": len(delays), "failures": failures,
                "median_delivery_ms": int(statistics.median(delays)) if delays else None}
