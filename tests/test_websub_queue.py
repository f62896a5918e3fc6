"""The hub's queue on SQLite and PostgreSQL: claims are exclusive across connections, a change is
recorded by one process only, a burst of changes queues one delivery per subscriber."""
from __future__ import annotations

import threading
import time

import pytest

from feeds.store import Store
from feeds.store.websub import TopicDoc



@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'q.db'}"
    else:
        url = request.getfixturevalue("cluster").create_db(f"q_{request.node.name.lower()[-20:].strip('[]-')}")
    s = Store(url)
    yield s
    s.close()


def doc(etag: str) -> TopicDoc:
    return TopicDoc(etag, "application/atom+xml; charset=utf-8", etag.encode())


def test_concurrent_claims_take_each_job_once(store):
    ws = store.websub
    for n in range(60):
        ws.enqueue("deliver", f"http://example.com/{n}", "http://feeds.test/feeds/all.atom", {})
    taken: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        # each thread is its own connection, as another process would be
        while jobs := ws.claim(limit=5, lease_ms=60_000):
            with lock:
                taken.extend(j.id for j in jobs)
            ws.done(jobs, ok=True)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 60 and len(set(taken)) == 60
    assert ws.queued() == 0 and ws.health()["deliveries"] == 60


def test_an_expired_claim_is_taken_again_and_the_late_holder_cannot_finish(store):
    ws = store.websub
    ws.enqueue("verify", "http://example.com/cb", "http://feeds.test/feeds/all.atom", {"mode": "subscribe"})
    first = ws.claim(limit=10, lease_ms=1)
    assert len(first) == 1
    time.sleep(0.01)
    second = ws.claim(limit=10, lease_ms=60_000)
    assert [j.id for j in second] == [first[0].id]
    ws.done(first, ok=True)  # the first holder lost its lease: nothing happens
    assert ws.queued() == 1
    ws.done(second, ok=True)
    assert ws.queued() == 0


def test_one_change_is_recorded_once_and_a_burst_queues_one_delivery(store):
    ws = store.websub
    topic = "http://feeds.test/feeds/topics/ai.atom"
    assert ws.activate("http://example.com/a", topic, "example.com", None, 3600, 10, 10) is None
    assert ws.activate("http://example.com/b", topic, "example.com", "s", 3600, 10, 10) is None
    assert ws.activate("http://example.com/c", topic, "example.com", None, 3600, 2, 10).startswith("too many")
    ws.baseline(topic, doc("e1"))
    ws.baseline(topic, doc("ignored"))  # a baseline never replaces a recorded document
    assert ws.topic_doc(topic).etag == "e1"
    assert ws.record_change(topic, "e1", doc("e2")) == 2
    assert ws.record_change(topic, "e1", doc("e2")) == -1  # another process saw the same change
    assert ws.record_change(topic, "e2", doc("e3")) == 0   # deliveries still pending carry e3
    assert ws.queued() == 2 and ws.topic_doc(topic).body == b"e3"
    assert ws.unsubscribe("http://example.com/a", topic) and ws.queued() == 1
