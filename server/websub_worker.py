"""The WebSub hub's worker: notices changed feeds and makes the queued requests.

``Hub.run_pass()`` does one round: when the store version moved since this process last looked,
re-render every subscribed topic URL (or, with an external hub, every unfiltered feed) and
compare it with the last document distributed; a changed one queues its distribution (the
compare-and-set in ``WebSubStore.record_change`` lets one process win). Then it claims due jobs
and runs them on a small thread pool: verification of intent (§5.3), denial notices (§5.2),
content distribution (§7, with ``X-Hub-Signature`` §8) and publish pings to an external hub.
A failed request is retried with doubling waits until ``WEBSUB_GIVE_UP_SECONDS``.

``serve`` runs passes on a background thread; ``import`` runs one after its sync;
``topicfeed websub deliver`` runs them until the queue has nothing due.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from flask import Flask

from feeds.errors import QueryError, UnknownFeed
from feeds.feedspec import FeedRef
from feeds.store.websub import Job, TopicDoc, now_ms

from .context import get_store, render_cache
from .links import Links, hub_url
from .websub_http import Answer, CallbackRefused, host_key, request
from .websub_topics import parse_topic, render_topic, topic_context

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 3600


def _with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to its query. A fragment is dropped first (it is never sent,
    RFC 3986 §3.5): appended after it, the parameters would vanish with it."""
    url = url.split("#", 1)[0]
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _ok(answer: Answer) -> bool:
    return 200 <= answer.status < 300


class Hub:
    """The hub's worker for one app (one per process)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.config = app.config
        self.store = get_store(app)
        self.ws = self.store.websub
        self.external = app.config["WEBSUB_HUB"] or None
        with topic_context(app):
            self.hub = hub_url()
        self._seen_version: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, app.config["WEBSUB_CONCURRENCY"]),
                                        thread_name_prefix="websub")

    @property
    def enabled(self) -> bool:
        """A hub is configured, and feeds have absolute URLs to render outside requests."""
        return self.hub is not None and bool(self.config["PUBLIC_BASE_URL"])

    def run_pass(self) -> int:
        """Look for changes, then run the due jobs; returns how many jobs ran."""
        if not self.enabled:
            return 0
        self.scan()
        jobs = self.ws.claim(limit=self.config["WEBSUB_CONCURRENCY"] * 8, lease_ms=self._lease_ms())
        docs: dict[str, TopicDoc | None] = {}  # each topic's latest document, read once per batch
        outcomes = list(self._pool.map(lambda job: self._run(job, docs), jobs))
        self.ws.done([job for job, ok in zip(jobs, outcomes) if ok is True], ok=True)
        self.ws.done([job for job, ok in zip(jobs, outcomes) if ok is False], ok=False)
        return len(jobs)

    def drain(self) -> int:
        """Passes until nothing is due (``import`` and ``websub deliver``); returns jobs run."""
        total = 0
        while ran := self.run_pass():
            total += ran
        return total

    def _lease_ms(self) -> int:
        # long enough for a verification plus a delivery at the full timeout, with room to spare
        return int((4 * self.config["WEBSUB_TIMEOUT"] + 30) * 1000)

    # noticing changes ------------------------------------------------------------------------

    def scan(self) -> None:
        """Re-render topics once per store version.

        Every subscribed topic URL is re-rendered; per-feed change tracking in the store can later
        narrow ``_candidates`` to the feeds a write touched."""
        version = self.store.version()
        if version == self._seen_version:
            return
        self.ws.expire()
        render_cache(self.app).invalidate()  # renders below must see at least ``version``, not a cached older one
        with topic_context(self.app):
            for url, publish in self._candidates():
                self._check(url, publish)
        self._seen_version = version

    def _candidates(self) -> list[tuple[str, list[str]]]:
        """(topic URL to compare, URLs to ping the external hub with when it changed)."""
        if not self.external:
            return [(url, []) for url in self.ws.subscribed_topics()]
        links = Links(self.config["PUBLIC_BASE_URL"])
        refs = [FeedRef("all")] + [FeedRef("topic", t.slug) for t in self.store.topics() if t.count]
        refs += [FeedRef("provider", p.domain) for p in self.store.providers() if p.count]
        # one render (Atom) tells whether a feed changed; its three formats carry the same entries
        return [(links.feed(ref, "atom"), list(links.feeds(ref).values())) for ref in refs]

    def _check(self, url: str, publish: list[str]) -> None:
        try:
            doc = self.render(url)
        except (UnknownFeed, QueryError) as exc:
            ended = self.ws.end_topic(url, f"the feed no longer exists: {exc}")
            log.info("websub: topic %s ended (%d subscription(s) denied): %s", url, ended, exc)
            return
        old = self.ws.topic_doc(url)
        if old is None:
            self.ws.baseline(url, doc)
        elif old.etag != doc.etag:
            queued = self.ws.record_change(url, old.etag, doc, [(self.external, u) for u in publish if self.external])
            if queued >= 0:
                log.info("websub: %s changed, %d request(s) queued", url, queued)

    def render(self, url: str) -> TopicDoc:
        """The topic's document now (in a topic context); raises ``QueryError``/``UnknownFeed``."""
        rendered = render_topic(parse_topic(url))
        return TopicDoc(rendered.etag, rendered.content_type, rendered.body)

    # running jobs ----------------------------------------------------------------------------

    def _run(self, job: Job, docs: dict[str, TopicDoc | None]) -> bool | None:
        """Make the job's request: True when it is done, False when it is given up, None when
        it is rescheduled."""
        handler = {"verify": self._verify, "deny": self._deny, "deliver": lambda j: self._deliver(j, docs),
                   "publish": self._publish}[job.kind]
        try:
            done = handler(job)
        except CallbackRefused as exc:
            log.warning("websub: %s to %s refused: %s", job.kind, job.callback, exc)
            return False
        except OSError as exc:  # websub_http.request's network failures, the deadline included
            log.info("websub: %s to %s failed: %s", job.kind, job.callback, exc)
            done = False
        except Exception:  # a bug must not kill the worker; the job is retried, then given up
            log.exception("websub: %s to %s crashed", job.kind, job.callback)
            done = False
        if done:
            return True
        waited = now_ms() - job.created_ms
        if waited >= self.config["WEBSUB_GIVE_UP_SECONDS"] * 1000:
            log.warning("websub: gave up %s to %s after %d attempt(s)", job.kind, job.callback, job.attempts + 1)
            return False
        backoff = min(self.config["WEBSUB_RETRY_SECONDS"] * 2 ** job.attempts, MAX_BACKOFF_SECONDS)
        self.ws.retry(job, now_ms() + int(backoff * 1000))
        return None

    def _call(self, method: str, url: str, *, operator: bool = False, **kwargs: object) -> Answer:
        allow = operator or self.config["WEBSUB_ALLOW_PRIVATE"]  # the operator's own hub may be internal
        return request(method, url, allow_private=allow, timeout=self.config["WEBSUB_TIMEOUT"], **kwargs)  # type: ignore[arg-type]

    def _verify(self, job: Job) -> bool:
        """§5.3 verification of intent: the subscriber must echo the challenge with a 2xx."""
        mode = job.payload["mode"]
        challenge = secrets.token_urlsafe(24)
        # §5.3 (and §5.2 for a denial): "the topic URL given in the corresponding subscription
        # request", which may spell the canonical topic differently (parameter order, host case)
        given = job.payload.get("given_topic") or job.topic
        params = {"hub.mode": mode, "hub.topic": given, "hub.challenge": challenge}
        if mode == "subscribe":
            params["hub.lease_seconds"] = str(job.payload["lease_seconds"])
        answer = self._call("GET", _with_query(job.callback, params))
        if answer.status >= 500:
            return False  # the subscriber may be down: ask again later
        if not _ok(answer) or answer.body.strip() != challenge.encode():
            log.info("websub: %s %s for %s not confirmed (status %d)", mode, job.callback, job.topic, answer.status)
            return True
        if mode == "unsubscribe":
            self.ws.unsubscribe(job.callback, job.topic)
            return True
        host = host_key(job.callback)
        denied = self.ws.activate(job.callback, job.topic, host, job.payload.get("secret"),
                                  job.payload["lease_seconds"], self.config["WEBSUB_MAX_PER_HOST"],
                                  self.config["WEBSUB_MAX_SUBSCRIPTIONS"])
        if denied:
            self.ws.enqueue("deny", job.callback, given, {"reason": denied})
        elif self.ws.topic_doc(job.topic) is None:
            with topic_context(self.app):
                try:
                    self.ws.baseline(job.topic, self.render(job.topic))
                except (UnknownFeed, QueryError) as exc:
                    self.ws.end_topic(job.topic, f"the feed no longer exists: {exc}")
        return True

    def _deny(self, job: Job) -> bool:
        """§5.2: tell the subscriber its subscription was denied or ended."""
        params = {"hub.mode": "denied", "hub.topic": job.topic, "hub.reason": job.payload.get("reason", "")}
        return _ok(self._call("GET", _with_query(job.callback, params)))

    def _deliver(self, job: Job, docs: dict[str, TopicDoc | None]) -> bool:
        """§7: POST the topic's latest document; §8: sign it when the subscriber gave a secret."""
        if job.topic not in docs:
            docs[job.topic] = self.ws.topic_doc(job.topic)
        doc = docs[job.topic]
        if job.expires_ms is None or job.expires_ms <= now_ms() or doc is None:
            return True  # unsubscribed, expired or ended since: nothing to send
        headers = {"Content-Type": doc.content_type, "Link": f'<{self.hub}>; rel="hub", <{job.topic}>; rel="self"'}
        if job.secret:
            digest = hmac.new(job.secret.encode("utf-8"), doc.body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature"] = f"sha256={digest}"
        return _ok(self._call("POST", job.callback, headers=headers, body=doc.body))

    def _publish(self, job: Job) -> bool:
        """The publish ping external hubs take: ``hub.mode=publish&hub.url=<feed URL>``."""
        body = urlencode({"hub.mode": "publish", "hub.url": job.topic}).encode()
        return _ok(self._call("POST", job.callback, operator=True, body=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"}))


def start_worker(app: Flask) -> threading.Event | None:
    """Run hub passes every ``WEBSUB_POLL_SECONDS`` on a daemon thread (``serve``); returns the
    event that stops it, or None when no hub is configured."""
    hub = Hub(app)
    if not hub.enabled:
        return None
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                busy = hub.run_pass()
            except Exception:  # the database may be briefly unreachable: log, wait, try again
                log.exception("websub: pass failed")
                busy = 0
            if not busy:
                stop.wait(app.config["WEBSUB_POLL_SECONDS"])

    threading.Thread(target=loop, name="websub-worker", daemon=True).start()
    return stop
