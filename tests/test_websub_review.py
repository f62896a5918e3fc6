"""Review of the WebSub hub (issue 14) as a subscriber uses it, per the W3C WebSub Recommendation:
callbacks the hub could never request, the topic echoed in verification (§5.3), topic spellings
readers reach the feed by, the operator CLI's arguments, and fuzzed hub requests (§5.1)."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import create_app
from server.cli import main as cli
from server.websub_http import CallbackRefused, request
from server.websub_worker import Hub

from .test_websub import BASE, admin_token, article, make_instance
from .test_websub_queue import store  # noqa: F401 - fixture: a SQLite and a PostgreSQL store (cluster: conftest)
from .websub_subscriber import Subscriber

ROBOTICS = f"{BASE}/feeds/topics/robotics.atom"


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Path:
    return make_instance(tmp_path_factory.mktemp("review"), "websub_rate_limit = 1000000\n")


@pytest.fixture(scope="module")
def app(instance):
    return create_app({}, instance)


@pytest.fixture
def subscriber():
    sub = Subscriber()
    yield sub
    sub.close()


def post(app, **fields: str):
    form = {"hub.mode": "subscribe", "hub.callback": "http://example.com/cb", "hub.topic": ROBOTICS}
    form.update({f"hub.{k}": v for k, v in fields.items()})
    return app.test_client().post("/websub", data=form)


UNREQUESTABLE = {
    "space in path": "http://example.com/a b",
    "non-ASCII path": "http://example.com/caf\u00e9",
    "CR LF in path": "http://example.com/x\r\nX-Evil: 1",
    "tab": "http://example.com/\tcb",
    "label over 63": "http://" + "a" * 64 + ".example.com/cb",
    "non-ASCII host": "http://ex\u00e4mple.com/cb",
}


@pytest.mark.parametrize("callback", UNREQUESTABLE.values(), ids=UNREQUESTABLE.keys())
def test_callback_the_hub_cannot_request_is_refused_at_subscribe(app, callback):
    """Before the fix these got 202 and then failed on every try until given up, some with a
    traceback in the worker log (UnicodeEncodeError, the IDNA codec's UnicodeError)."""
    resp = post(app, callback=callback)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_data(as_text=True).startswith("hub.callback ")
    assert "Traceback" not in resp.get_data(as_text=True)


def test_host_the_idna_codec_refuses_is_a_clear_refusal_not_a_crash():
    with pytest.raises(CallbackRefused, match="does not resolve"):
        request("GET", "http://a..example.com/cb", allow_private=False, timeout=2.0)


def test_verification_names_the_topic_as_the_subscriber_gave_it(app, subscriber, caplog):
    """§5.3: hub.topic in the verification GET is "the topic URL given in the corresponding
    subscription request"; the hub sent its canonical spelling (parameters reordered), which a
    subscriber comparing it with its own request refuses."""
    given = f"{ROBOTICS}?q=robot&limit=5"
    assert post(app, callback=subscriber.url("/order"), topic=given).status_code == 202
    with caplog.at_level(logging.ERROR):
        Hub(app).drain()
    [verify] = subscriber.of("GET", "/order", "subscribe")
    assert verify.params["hub.topic"] == given
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


SPELLINGS = {
    "upper-case scheme and host": "HTTP://FEEDS.TEST/feeds/topics/robotics.atom",
    "explicit default port": "http://feeds.test:80/feeds/topics/robotics.atom",
    "trailing dot": "http://feeds.test./feeds/topics/robotics.atom",
    "percent-encoded path": "http://feeds.test/feeds/topics/%72obotics.atom",
}


@pytest.mark.parametrize("topic", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_topic_spellings_of_this_server_are_accepted(app, topic):
    """RFC 3986 §6.2.2–6.2.3: these name the same feed a reader gets; the hub refused them."""
    resp = post(app, topic=topic)
    assert resp.status_code == 202, resp.get_data(as_text=True)


@pytest.mark.parametrize("topic", ["https://feeds.test/feeds/topics/robotics.atom",
                                   "http://feeds.test:8080/feeds/topics/robotics.atom",
                                   "http://feeds.test@evil.example/feeds/topics/robotics.atom",
                                   "http://user@feeds.test/feeds/topics/robotics.atom",
                                   "http://feeds.test/feeds/topics/robotics.atom/",
                                   "http://feeds.test/feeds/topics/%2Frobotics.atom"])
def test_other_origins_and_non_feed_paths_stay_refused(app, topic):
    resp = post(app, topic=topic)
    assert resp.status_code == 400 and resp.get_data(as_text=True).startswith("hub.topic "), resp.get_data(as_text=True)


@pytest.mark.parametrize("argument, message", [("99999999999999999999", "range"), ("0", "range"), ("-3", "range"),
                                               ("abc", "not a valid integer")])
def test_websub_remove_with_bad_ids_says_so(instance, argument, message):
    """An id beyond SQLite's 64-bit integers gave an OverflowError traceback."""
    result = CliRunner().invoke(cli, ["websub", "remove", "--instance", str(instance), "--", argument])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


KEYS = st.sampled_from(["hub.mode", "hub.topic", "hub.callback", "hub.lease_seconds", "hub.secret", "hub.other"])
VALUES = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["subscribe", "unsubscribe", ROBOTICS, f"{BASE}/feeds/all.json?q=", "http://example.com/cb",
                     "9" * 5000, "-1", "0", "x" * 300]),
    st.builds(str.__add__, st.sampled_from([f"{BASE}/feeds/", "http://", "https://[", "http://example.com/",
                                            f"{BASE}/feeds/all.atom?"]), st.text(max_size=80)))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(KEYS, VALUES), max_size=8), st.sampled_from(["utf-8", "latin-1", "raw"]))
def test_fuzzed_hub_requests_get_a_clear_answer(app, pairs, encoding):
    """Random hub.* fields in several encodings: 202 or a one-line 4xx, never a 5xx; what is
    accepted has a callback the hub can request."""
    if encoding == "raw":
        body = "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
    else:
        body = "&".join(f"{quote(k)}={quote(v.encode(encoding, 'replace'))}" for k, v in pairs).encode()
    resp = app.test_client().post("/websub", data=body, content_type="application/x-www-form-urlencoded")
    assert resp.status_code in (202, 400, 413), (resp.status_code, body[:200], resp.get_data(as_text=True)[:200])
    if resp.status_code == 400:
        text = resp.get_data(as_text=True)
        assert text.startswith("hub.") and text.count("\n") <= 1, text


def test_a_callback_with_a_fragment_gets_the_verification_parameters(app, subscriber):
    """The hub appended hub.* after the callback's '#fragment', so the GET carried none of them
    and the subscriber could not echo a challenge: the subscription never became active."""
    assert post(app, callback=subscriber.url("/frag?keep=1#part"), secret="s3cret", lease_seconds="7200").status_code == 202
    Hub(app).drain()
    [verify] = subscriber.of("GET", "/frag", "subscribe")
    assert verify.params["keep"] == "1" and verify.params["hub.lease_seconds"] == "7200" and verify.params["hub.challenge"]
    subs = [s for s in Hub(app).ws.subscriptions() if s.callback == subscriber.url("/frag?keep=1#part")]
    assert len(subs) == 1 and subs[0].secret == "s3cret"


def test_resubscribe_renews_the_lease_and_secret(app, subscriber):
    callback = subscriber.url("/renew")
    assert post(app, callback=callback, lease_seconds="3600", secret="one").status_code == 202
    Hub(app).drain()
    [first] = [s for s in Hub(app).ws.subscriptions() if s.callback == callback]
    assert post(app, callback=callback, lease_seconds="7200", secret="two").status_code == 202
    Hub(app).drain()
    [again] = [s for s in Hub(app).ws.subscriptions() if s.callback == callback]
    assert again.id == first.id and again.lease_seconds == 7200 and again.secret == "two"
    assert again.expires_ms > first.expires_ms + 3000 * 1000


@pytest.mark.parametrize("field", ["callback", "topic"])
def test_a_missing_parameter_is_called_missing(app, field):
    """A missing hub.callback was answered "must be a URL of at most 2048 characters"."""
    resp = post(app, **{field: ""})
    assert resp.status_code == 400
    text = resp.get_data(as_text=True)
    assert text.startswith(f"hub.{field} is missing"), text


def test_a_burst_of_writes_is_one_signed_post_of_the_latest_document(app, instance, subscriber):
    """§7: one POST per burst with the latest document, its content type, Link hub and self;
    §8: X-Hub-Signature is the HMAC-SHA256 of exactly the body bytes."""
    topic = f"{BASE}/feeds/topics/robotics.json?min_quality=10"
    assert post(app, callback=subscriber.url("/burst"), topic=topic, secret="k\u00e9y").status_code == 202
    hub = Hub(app)
    hub.drain()
    assert subscriber.of("GET", "/burst", "subscribe")
    client, token = app.test_client(), admin_token(instance)
    titles = [f"Review burst {n}" for n in range(3)]
    for title in titles:
        resp = client.post("/api/v1/articles", json=article(title, ["robotics"]), headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 201, resp.get_data(as_text=True)
    hub.drain()
    [delivery] = subscriber.of("POST", "/burst")
    expected = hmac.new("k\u00e9y".encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["x-hub-signature"] == f"sha256={expected}"
    assert delivery.headers["link"] == f'<{BASE}/websub>; rel="hub", <{topic}>; rel="self"'
    reader = client.get("/feeds/topics/robotics.json?min_quality=10")
    assert delivery.headers["content-type"] == reader.headers["Content-Type"]
    assert delivery.body == reader.data
    assert {t for t in titles} <= {item["title"] for item in json.loads(delivery.body)["items"]}
    health = client.get("/healthz").json["websub"]
    assert health["deliveries"] >= 1 and health["subscriptions"] >= 1


def test_metrics_carry_the_websub_counts_healthz_reports(app, subscriber):
    """Issue 14 part 6: the counts go to /metrics too; it had none of them."""
    assert post(app, callback=subscriber.url("/metrics")).status_code == 202
    Hub(app).drain()
    client = app.test_client()
    health = client.get("/healthz").json["websub"]
    text = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(as_text=True)
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("topicfeed_websub_")}
    assert values["topicfeed_websub_subscriptions"] == health["subscriptions"] >= 1
    assert values["topicfeed_websub_queued"] == health["queued"]
    assert values["topicfeed_websub_deliveries"] == health["deliveries"]
    assert values["topicfeed_websub_failures"] == health["failures"]


def test_concurrent_verifications_of_one_subscription_do_not_collide(store):  # noqa: F811 - the fixture
    """A subscriber that repeats its subscribe request gets two verify jobs, which the worker's
    pool runs at once: on PostgreSQL both UPDATEs found no row and the second INSERT hit the
    unique (callback, topic) constraint, so the job crashed with a traceback and was retried."""
    ws = store.websub
    errors: list[Exception] = []
    rounds = 30  # the window is one round trip wide: several rounds make a collision near certain

    def verify(barrier: threading.Barrier, callback: str, n: int) -> None:
        barrier.wait()
        try:
            assert ws.activate(callback, ROBOTICS, "example.com", f"s{n}", 3600 + n, 1000, 1000) is None
        except Exception as exc:  # noqa: BLE001 - the failure this test is about
            errors.append(exc)

    for round_ in range(rounds):
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=verify, args=(barrier, f"https://example.com/cb{round_}", n)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [type(e).__name__ for e in errors] == []
    assert len(ws.subscriptions()) == rounds
