"""The built-in WebSub hub end to end: real ``topicfeed serve`` processes, a real subscriber on
loopback (tests/websub_subscriber.py), curator writes over HTTP and imports in their own process."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import feedparser
import pytest
from click.testing import CliRunner

from feeds.demo import write_demo_content
from feeds.importer import sync
from feeds.store import Store
from server import create_app, get_store
from server.cli import main as cli

from server.websub_http import CallbackRefused, check_literal, request, resolve

from .conftest import REPO, LiveServer
from .websub_subscriber import Subscriber, wait_for

BASE = "http://feeds.test"
CONFIG = f"""public_base_url = "{BASE}"
websub_allow_private = true
websub_min_lease_seconds = 1
websub_poll_seconds = 0.1
websub_retry_seconds = 0.2
websub_give_up_seconds = 2.0
websub_timeout = 2.0
"""
ROBOTICS, CLOUD = f"{BASE}/feeds/topics/robotics.atom", f"{BASE}/feeds/topics/cloud.atom"


def make_instance(tmp_path: Path, extra: str = "") -> Path:
    """An instance with 40 demo articles imported and the test hub settings."""
    instance, content = tmp_path / "instance", tmp_path / "content"
    instance.mkdir()
    write_demo_content(content, 40, seed=3)
    (instance / "config.toml").write_text(CONFIG + f'content_dirs = ["{content}"]\n' + extra)
    app = create_app({}, instance)
    sync(get_store(app), [content])
    get_store(app).close()
    return instance


@pytest.fixture
def subscriber():
    sub = Subscriber()
    yield sub
    sub.close()


@pytest.fixture
def hub(tmp_path):
    servers: list[LiveServer] = []

    def start(instance: Path | None = None) -> LiveServer:
        server = LiveServer(instance or hub.instance)
        servers.append(server)
        return server

    hub.instance = make_instance(tmp_path)
    hub.start = start
    yield hub
    for server in servers:
        if server.proc.poll() is None:
            server.stop()


def post_form(url: str, fields: dict[str, str]) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=urlencode(fields).encode()), timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def subscribe(server: LiveServer, callback: str, topic: str, mode: str = "subscribe", **extra: str) -> None:
    status, body = post_form(server.url + "/websub", {"hub.mode": mode, "hub.callback": callback, "hub.topic": topic,
                                                      **{f"hub.{k}": v for k, v in extra.items()}})
    assert status == 202, body


def subscribed(subscriber: Subscriber, server: LiveServer, path: str, topic: str, **extra: str) -> None:
    """Subscribe and wait until the verification was answered and the subscription is listed."""
    subscribe(server, subscriber.url(path), topic, **extra)
    wait_for(lambda: subscriber.of("GET", path, "subscribe"), what=f"verification of {path}")
    wait_for(lambda: any(s.callback == subscriber.url(path) and s.topic == topic for s in list_subs(server.instance)),
             what=f"{path} active")


_STORES: dict[Path, Store] = {}


def list_subs(instance: Path):
    """The instance's subscriptions, read through one store per instance (polled often)."""
    if instance not in _STORES:
        _STORES[instance] = Store(f"sqlite:///{instance / 'topicfeed.db'}")
    return _STORES[instance].websub.subscriptions()


def article(title: str, topics: list[str], domain: str = "wired.com") -> dict:
    slug = title.lower().replace(" ", "-")
    return {"title": title, "excerpt": f"{title}, written through the API.", "publishedDateTime": "2026-01-02T03:04:05Z",
            "webUrl": f"https://www.{domain}/2026/{slug}/", "type": "article", "quality": 90, "heat": 50,
            "provider": {"name": domain, "domain": domain}, "topics": topics}


def admin_token(instance: Path) -> str:
    """A fresh admin token of the instance (each one is recorded in its store)."""
    result = CliRunner().invoke(cli, ["admin-token", "--instance", str(instance)])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def curator_write(server: LiveServer, fields: dict) -> None:
    token = admin_token(server.instance)
    req = urllib.request.Request(server.url + "/api/v1/articles", data=json.dumps(fields).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)


def health(server: LiveServer) -> dict:
    return json.loads(urllib.request.urlopen(server.url + "/healthz", timeout=10).read())["websub"]


# discovery and refusals: in-process, no network ----------------------------------------------

def test_public_feeds_advertise_hub_and_self_private_feeds_do_not(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "i" / "config.toml").write_text(f'public_base_url = "{BASE}"\n')  # the CLI below reads it too
    app = create_app({"VERSION_TTL": 0}, tmp_path / "i")
    write_demo_content(tmp_path / "c", 10)
    sync(get_store(app), [tmp_path / "c"])
    client = app.test_client()
    rss = client.get("/feeds/topics/ai.rss?min_quality=5")
    assert b'<atom:link href="http://feeds.test/websub" rel="hub"/>' in rss.data  # feedgen alone drops it from RSS
    assert b'<atom:link href="http://feeds.test/feeds/topics/ai.rss?min_quality=5" rel="self"' in rss.data
    atom = feedparser.parse(client.get("/feeds/topics/ai.atom").data)
    assert {(link.rel, link.href) for link in atom.feed.links} >= {
        ("hub", f"{BASE}/websub"), ("self", f"{BASE}/feeds/topics/ai.atom")}
    assert client.get("/feeds/all.json").json["hubs"] == [{"type": "WebSub", "url": f"{BASE}/websub"}]
    link = f'<{BASE}/websub>; rel="hub", <{BASE}/feeds/topics/ai.rss?min_quality=5>; rel="self"'
    assert rss.headers["Link"] == link
    again = client.get("/feeds/topics/ai.rss?min_quality=5", headers={"If-None-Match": rss.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Link"] == link

    runner = CliRunner()
    client_id = runner.invoke(cli, ["clients", "add", "r", "--json", "--instance", app.instance_path]).output
    client_id = json.loads(client_id)["id"]
    private_url = runner.invoke(cli, ["clients", "feed-url", client_id, "topics/ai", "--ext", "rss",
                                      "--instance", app.instance_path]).output.strip()
    private = client.get(private_url.removeprefix(BASE))
    assert private.status_code == 200 and b'rel="hub"' not in private.data and "Link" not in private.headers

    plain = create_app({"VERSION_TTL": 0, "PUBLIC_BASE_URL": ""}, tmp_path / "i").test_client()  # no public_base_url: no hub
    assert b'rel="hub"' not in plain.get("/feeds/topics/ai.atom").data
    assert plain.post("/websub", data={"hub.mode": "subscribe"}).status_code == 404


@pytest.mark.parametrize("fields, param", [
    ({"hub.topic": "https://elsewhere.example/feeds/all.atom"}, "hub.topic"),
    ({"hub.topic": f"{BASE}/api/v1/topics"}, "hub.topic"),
    ({"hub.topic": f"{BASE}/feeds/all.atom?colour=red"}, "hub.topic"),
    ({"hub.topic": f"{BASE}/feeds/all.atom?min_quality=x"}, "hub.topic"),
    ({"hub.topic": f"{BASE}/feeds/topics/no-such-topic.atom"}, "hub.topic"),
    ({"hub.callback": "http://127.0.0.1:8000/cb"}, "hub.callback"),
    ({"hub.callback": "http://[::1]/cb"}, "hub.callback"),
    ({"hub.callback": "http://169.254.169.254/latest"}, "hub.callback"),
    ({"hub.callback": "http://localhost/cb"}, "hub.callback"),
    ({"hub.callback": "ftp://example.com/cb"}, "hub.callback"),
    ({"hub.callback": "javascript:alert(1)"}, "hub.callback"),
    ({"hub.secret": "s" * 200}, "hub.secret"),
    ({"hub.lease_seconds": "ten"}, "hub.lease_seconds"),
    ({"hub.mode": "publish"}, "hub.mode"),
])
def test_invalid_hub_requests_are_refused_naming_the_parameter(tmp_path, fields, param):
    app = create_app({"PUBLIC_BASE_URL": BASE}, tmp_path / "i")
    good = {"hub.mode": "subscribe", "hub.callback": "https://example.com/cb", "hub.topic": f"{BASE}/feeds/all.atom"}
    client = app.test_client()
    resp = client.post("/websub", data=good | fields)
    assert resp.status_code == 400 and resp.data.decode().startswith(param) and resp.data.count(b"\n") == 1
    assert get_store(app).websub.queued() == 0
    assert client.post("/websub", data=good | {"hub.secret": "s" * 199}).status_code == 202


def test_private_callbacks_pass_when_allowed_and_the_endpoint_is_rate_limited(tmp_path):
    app = create_app({"PUBLIC_BASE_URL": BASE, "WEBSUB_ALLOW_PRIVATE": True, "WEBSUB_RATE_LIMIT": 3}, tmp_path / "i")
    client = app.test_client()
    form = {"hub.mode": "subscribe", "hub.callback": "http://127.0.0.1:9/cb", "hub.topic": f"{BASE}/feeds/all.json"}
    assert [client.post("/websub", data=form).status_code for _ in range(4)] == [202, 202, 202, 429]


def test_callback_addresses_are_checked_and_redirects_not_followed(subscriber):
    for url in ("http://10.1.2.3/", "http://[::ffff:127.0.0.1]/", "http://192.168.0.1:8080/", "http://[fe80::1]/"):
        with pytest.raises(CallbackRefused):
            check_literal(url, allow_private=False)
    with pytest.raises(CallbackRefused, match="non-public address"):
        resolve("localhost", 80, allow_private=False)  # a DNS name is checked by what it resolves to
    assert check_literal("https://example.com/cb", allow_private=False) == "example.com"
    subscriber.behaviour["/moved"] = "redirect"
    answer = request("GET", subscriber.url("/moved"), allow_private=True, timeout=2)
    assert answer.status == 302
    assert [r.path for r in subscriber.received] == ["/moved"]  # the redirect target was never asked
    with pytest.raises(CallbackRefused):
        request("GET", subscriber.url("/x"), allow_private=False, timeout=2)
    assert len(subscriber.received) == 1


# the live hub -------------------------------------------------------------------------------

def test_verification_of_intent_echo_activates_wrong_echo_does_not(hub, subscriber):
    server = hub.start()
    subscriber.behaviour["/wrong"] = "wrong"
    subscribe(server, subscriber.url("/good"), ROBOTICS, lease_seconds="7200", secret="s3cret")
    subscribe(server, subscriber.url("/wrong"), ROBOTICS)
    good = wait_for(lambda: subscriber.of("GET", "/good"), what="verification GET")[0]
    assert good.params["hub.mode"] == "subscribe" and good.params["hub.topic"] == ROBOTICS
    assert good.params["hub.lease_seconds"] == "7200" and len(good.params["hub.challenge"]) >= 20
    assert "hub.secret" not in good.params
    wait_for(lambda: subscriber.of("GET", "/wrong"), what="verification GET to /wrong")
    wait_for(lambda: list_subs(hub.instance), what="activation")
    time.sleep(0.5)
    subs = list_subs(hub.instance)
    assert [(s.callback, s.secret, s.lease_seconds) for s in subs] == [(subscriber.url("/good"), "s3cret", 7200)]

    runner = CliRunner()
    listed = runner.invoke(cli, ["websub", "list", "--instance", str(hub.instance)])
    assert f"{ROBOTICS}\t{subscriber.url('/good')}" in listed.output and "\tsigned\t" in listed.output
    assert runner.invoke(cli, ["websub", "remove", str(subs[0].id), "--instance", str(hub.instance)]).exit_code == 0
    assert list_subs(hub.instance) == []
    gone = runner.invoke(cli, ["websub", "remove", "999", "--instance", str(hub.instance)])
    assert gone.exit_code == 1 and "no subscription 999" in gone.output


def test_curator_write_is_delivered_signed_to_its_topic_only_until_unsubscribed(hub, subscriber):
    server = hub.start()
    subscribed(subscriber, server, "/robotics", ROBOTICS, secret="k" * 32)
    subscribed(subscriber, server, "/cloud", CLOUD)
    curator_write(server, article("Robot learns to fold laundry", ["Robotics"]))
    post = wait_for(lambda: subscriber.of("POST", "/robotics"), what="delivery")[0]
    assert post.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert post.headers["link"] == f'<{BASE}/websub>; rel="hub", <{ROBOTICS}>; rel="self"'
    expected = hmac.new(b"k" * 32, post.body, hashlib.sha256).hexdigest()
    assert post.headers["x-hub-signature"] == f"sha256={expected}"
    titles = [e.title for e in feedparser.parse(post.body).entries]
    assert "Robot learns to fold laundry" in titles
    assert post.body == urllib.request.urlopen(server.url + "/feeds/topics/robotics.atom").read()  # what readers get

    subscribe(server, subscriber.url("/robotics"), ROBOTICS, mode="unsubscribe")
    wait_for(lambda: not list_subs(hub.instance)[0].topic == ROBOTICS, what="unsubscribed")
    curator_write(server, article("Robot learns to iron shirts", ["Robotics", "Cloud"]))
    wait_for(lambda: subscriber.of("POST", "/cloud"), what="delivery to /cloud")
    time.sleep(1)
    assert len(subscriber.of("POST", "/robotics")) == 1 and len(subscriber.of("POST", "/cloud")) == 1
    assert b"Robot learns to iron shirts" in subscriber.of("POST", "/cloud")[0].body
    assert "x-hub-signature" not in subscriber.of("POST", "/cloud")[0].headers
    stats = health(server)
    assert stats["subscriptions"] == 1 and stats["deliveries"] == 2 and stats["median_delivery_ms"] is not None


def test_import_that_changes_three_feeds_delivers_exactly_three(hub, subscriber):
    server = hub.start()
    topics = {"/robotics": ROBOTICS, "/cloud": CLOUD, "/wired": f"{BASE}/feeds/providers/wired.com.rss",
              "/ethics": f"{BASE}/feeds/topics/ai-ethics.json", "/filtered": f"{BASE}/feeds/topics/ai-ethics.atom?min_quality=500"}
    for path, topic in topics.items():
        subscribed(subscriber, server, path, topic)
    content = hub.instance.parent / "content"
    record = article("Robots in the cloud", ["Robotics", "Cloud"])
    text = "---\n" + json.dumps(record) + "\n---\n"  # JSON is YAML
    (content / "_news" / "2026-01-02-robots-in-the-cloud.md").write_text(text)
    result = CliRunner().invoke(cli, ["import", "--instance", str(hub.instance)])  # its own store and hub pass
    assert result.exit_code == 0, result.output
    wait_for(lambda: len(subscriber.of("POST")) >= 3, what="three deliveries")
    time.sleep(1.5)
    assert sorted(r.path for r in subscriber.of("POST")) == ["/cloud", "/robotics", "/wired"]


def test_expired_lease_stops_deliveries(hub, subscriber):
    server = hub.start()
    subscribed(subscriber, server, "/short", ROBOTICS, lease_seconds="1")
    subscribed(subscriber, server, "/long", ROBOTICS)
    time.sleep(1.2)
    curator_write(server, article("Robot outlives its lease", ["Robotics"]))
    wait_for(lambda: subscriber.of("POST", "/long"), what="delivery to the live subscription")
    time.sleep(0.5)
    assert subscriber.of("POST", "/short") == []
    assert [s.callback for s in list_subs(hub.instance)] == [subscriber.url("/long")]


def test_failing_callback_is_retried_then_given_up_while_readers_are_served(hub, subscriber):
    server = hub.start()
    subscribed(subscriber, server, "/down", ROBOTICS)
    subscriber.behaviour["/down"] = "fail"
    curator_write(server, article("Robot meets a broken callback", ["Robotics"]))
    statuses = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and health(server)["failures"] == 0:
        statuses.append(urllib.request.urlopen(server.url + "/feeds/topics/robotics.atom", timeout=10).status)
    stats = health(server)
    assert stats["failures"] == 1 and stats["queued"] == 0
    assert len(subscriber.of("POST", "/down")) >= 3  # retried with backoff (0.2 s, 0.4 s, …) for 2 s
    assert statuses and set(statuses) == {200}


def test_subscription_survives_a_restart(hub, subscriber):
    first = hub.start()
    subscribed(subscriber, first, "/r", ROBOTICS)
    first.stop()
    second = hub.start()
    curator_write(second, article("Robot restarts the server", ["Robotics"]))
    post = wait_for(lambda: subscriber.of("POST", "/r"), what="delivery after the restart")[0]
    assert b"Robot restarts the server" in post.body


def test_two_servers_and_an_import_process_deliver_each_change_once(hub, subscriber):
    one, two = hub.start(), hub.start()
    paths = {"/robotics": ROBOTICS, "/cloud": CLOUD, "/vision": f"{BASE}/feeds/topics/computer-vision.atom"}
    for path, topic in paths.items():
        subscribed(subscriber, one, path, topic)
    curator_write(one, article("Robot written on server one", ["Robotics"]))
    wait_for(lambda: subscriber.of("POST", "/robotics"), what="first change")
    curator_write(two, article("Cloud written on server two", ["Cloud"]))
    wait_for(lambda: subscriber.of("POST", "/cloud"), what="second change")
    content = hub.instance.parent / "content"
    text = "---\n" + json.dumps(article("Vision from an import", ["Computer Vision"])) + "\n---\n"
    (content / "_news" / "2026-01-02-vision-from-an-import.md").write_text(text)
    assert run_cli("import", "--instance", str(hub.instance)).returncode == 0
    wait_for(lambda: subscriber.of("POST", "/vision"), what="third change")
    time.sleep(1.5)
    assert sorted(r.path for r in subscriber.of("POST")) == ["/cloud", "/robotics", "/vision"]


def test_a_topic_that_stops_existing_ends_its_subscriptions_with_a_denial(hub, subscriber):
    server = hub.start()
    curator_write(server, article("Lonely provider story", ["Robotics"], domain="lonely.example"))
    topic = f"{BASE}/feeds/providers/lonely.example.json"
    subscribed(subscriber, server, "/lonely", topic)
    token = admin_token(server.instance)
    req = urllib.request.Request(server.url + "/api/v1/articles/2026-01-02-lonely-provider-story", method="DELETE",
                                 headers={"Authorization": f"Bearer {token}"})
    assert urllib.request.urlopen(req, timeout=30).status == 204
    denied = wait_for(lambda: subscriber.of("GET", "/lonely", "denied"), what="denial notice")[0]
    assert denied.params["hub.topic"] == topic and "no longer exists" in denied.params["hub.reason"]
    assert list_subs(hub.instance) == [] and subscriber.of("POST", "/lonely") == []


def test_caps_deny_subscriptions_beyond_the_per_host_limit(tmp_path, subscriber):
    instance = make_instance(tmp_path, "websub_max_per_host = 1\n")
    server = LiveServer(instance)
    try:
        subscribed(subscriber, server, "/first", ROBOTICS)
        subscribe(server, subscriber.url("/second"), CLOUD)
        denied = wait_for(lambda: subscriber.of("GET", "/second", "denied"), what="denial")[0]
        assert "at most 1" in denied.params["hub.reason"] and len(list_subs(instance)) == 1
    finally:
        server.stop()


def test_external_hub_gets_publish_pings_for_changed_feeds(tmp_path, subscriber):
    instance = make_instance(tmp_path, f'websub_hub = "{subscriber.url("/hub")}"\n')
    app = create_app({}, instance)
    with app.test_request_context():
        assert b'<link href="' + subscriber.url("/hub").encode() + b'" rel="hub"/>' in app.test_client().get(
            "/feeds/all.atom").data
    get_store(app).close()
    runner = CliRunner()
    assert runner.invoke(cli, ["websub", "deliver", "--instance", str(instance)]).exit_code == 0  # baselines only
    assert subscriber.of("POST") == []
    content = tmp_path / "content"
    text = "---\n" + json.dumps(article("Robot pinged a hub", ["Robotics"], domain="techcrunch.com")) + "\n---\n"
    (content / "_news" / "2026-01-02-robot-pinged-a-hub.md").write_text(text)
    assert runner.invoke(cli, ["import", "--instance", str(instance)]).exit_code == 0
    pings = subscriber.of("POST", "/hub")
    assert all(p.headers["content-type"] == "application/x-www-form-urlencoded" for p in pings)
    forms = [dict(pair.split("=", 1) for pair in p.body.decode().split("&")) for p in pings]
    assert {f["hub.mode"] for f in forms} == {"publish"}
    urls = sorted(urllib.parse.unquote(f["hub.url"]) for f in forms)
    assert urls == sorted(f"{BASE}/feeds/{feed}.{ext}" for feed in ("all", "topics/robotics", "providers/techcrunch.com")
                          for ext in ("atom", "json", "rss"))
