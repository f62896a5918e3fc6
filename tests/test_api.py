"""The signed JSON API, checked with an independent implementation of the `secured` contract."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pytest

from feeds.importer import sync
from feeds.urlnorm import normalize_url, url_hash
from server import create_app, get_store
from server.cli import main as cli
from server.instance import load_keys

from .conftest import corpus_roots


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def independent_verify(obj: dict, secret: str) -> bool:
    """The contract from DESIGN.md, written out without itsdangerous."""
    body = {k: v for k, v in obj.items() if k != "secured"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    digest = b64(hashlib.sha256(canonical).digest())
    got_digest, stamp, signature = obj["secured"].split(".")
    derived = hmac.new(secret.encode(), b"topicfeed.secured.v1", hashlib.sha256).digest()
    expected = b64(hmac.new(derived, f"{got_digest}.{stamp}".encode("ascii"), hashlib.sha256).digest())
    return hmac.compare_digest(got_digest, digest) and hmac.compare_digest(expected, signature)


def signed_objects(value) -> list[dict]:
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "secured":
                found += signed_objects(v)
        if "secured" in value:
            found.append(value)
    elif isinstance(value, list):
        for v in value:
            found += signed_objects(v)
    return found


def assert_all_verify(body, secret: str) -> int:
    objs = signed_objects(body)
    assert objs, "response carries no secured field"
    for obj in objs:
        assert independent_verify(obj, secret), obj.get("title") or obj.get("id")
    return len(objs)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """A paired-mode app on the corpus, with one client created through the CLI."""
    roots = corpus_roots()
    content = tmp_path_factory.mktemp("content")
    layered = []
    for root in roots:  # a writable copy, for curator writes
        shutil.copytree(root, content / root.name)
        layered.append(content / root.name)
    instance = tmp_path_factory.mktemp("paired") / "instance"
    app = create_app({"VERSION_TTL": 0}, instance)
    sync(get_store(app), layered)
    runner = app.test_cli_runner()
    out = runner.invoke(cli, ["clients", "add", "laptop", "--server-url", "http://127.0.0.1:9", "--json",
                              "--instance", str(instance)])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    return {"app": app, "client": info, "instance": instance, "runner": runner, "roots": layered}


def headers(info) -> dict:
    return {"Authorization": f"Bearer {info['token']}"}


ENDPOINTS = ["/api/v1/topics", "/api/v1/providers", "/api/v1/articles/2022-07-18-open-source-isnt-working-for-ai",
             "/api/v1/topics/ai/articles?page=1", "/api/v1/topics/ai/articles?page=2&per_page=5&min_heat=0",
             "/api/v1/lookup?prefix=13b6628c",
             "/api/v1/lookup?url=https://www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.html",
             "/api/news/ai/index.json", "/api/news/ai/page/2/index.json"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_paired_mode_needs_a_token_and_signs_with_the_client_secret(paired, path):
    client = paired["app"].test_client()
    anonymous = client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.content_type == "application/problem+json"
    assert anonymous.json["status"] == 401 and "Bearer" in anonymous.json["detail"]
    resp = client.get(path, headers=headers(paired["client"]))
    assert resp.status_code == 200, resp.json
    assert assert_all_verify(resp.json, paired["client"]["secret"]) >= 1
    assert not any(independent_verify(o, "wrong-secret") for o in signed_objects(resp.json))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_public_mode_signs_with_the_server_key(corpus_app, path):
    resp = corpus_app.test_client().get(path)
    assert resp.status_code == 200
    newest = load_keys(Path(corpus_app.instance_path))[-1]
    assert_all_verify(resp.json, newest)


def test_tampering_any_field_breaks_verification(paired):
    resp = paired["app"].test_client().get(ENDPOINTS[2], headers=headers(paired["client"]))
    article = resp.json
    secret = paired["client"]["secret"]
    assert independent_verify(article, secret)
    for key, value in article.items():
        if key == "secured":
            continue
        tampered = dict(article)
        tampered[key] = (value + "x") if isinstance(value, str) else ([] if value else ["x"]) if isinstance(value, list) \
            else (value + 1) if isinstance(value, int) and not isinstance(value, bool) else {"x": 1} if isinstance(value, dict) else "x"
        assert not independent_verify(tampered, secret), key
    nested = json.loads(json.dumps(article))
    nested["related"][0]["title"] = "Something else"
    assert not independent_verify(nested["related"][0], secret)


def test_article_related_list(paired):
    article = paired["app"].test_client().get(ENDPOINTS[2], headers=headers(paired["client"])).json
    related = article["related"]
    curated = [r for r in related if r["source"] == "curated"]
    computed = [r for r in related if r["source"] == "computed"]
    assert [r["title"] for r in curated][:2] == ["Meta goes open source to complete its 200-language AI translation tool",
                                                "How AI is Changing Marketing for Consumer Brands"]
    assert related[: len(curated)] == curated  # curated first
    assert 1 <= len(computed) <= 5
    store = get_store(paired["app"])
    urls = [normalize_url(r["link"]) for r in related]
    assert len(urls) == len(set(urls)) and normalize_url(article["link"]) not in urls
    for r in computed:
        assert store.article(r["id"]) is not None and r["id"] != article["id"]


def test_curated_related_drops_self_references_and_duplicates(corpus_app):
    body = corpus_app.test_client().get(
        "/api/v1/articles/2021-01-14-microsoft-president-begs-tech-industry-to-improve-its-ethics").json
    titles = [r["title"].lower() for r in body["related"]]
    assert body["title"].lower() not in titles
    urls = [normalize_url(r["link"]) for r in body["related"]]
    assert len(urls) == len(set(urls))


def test_unpublished_and_unknown_articles_are_404(paired):
    client = paired["app"].test_client()
    resp = client.get("/api/v1/articles/2021-06-10-the-internet-intranets-and-the-ai-renaissance", headers=headers(paired["client"]))
    assert resp.status_code == 404 and resp.content_type == "application/problem+json"
    assert client.get("/api/v1/articles/nope", headers=headers(paired["client"])).json["detail"] == "no published article 'nope'"
    assert client.get("/api/v1/nothing-here", headers=headers(paired["client"])).content_type == "application/problem+json"


@pytest.mark.parametrize("query,param", [("prefix=13b6628", "prefix"), ("prefix=xyzxyzxyz", "prefix"), ("", "prefix"),
                                         ("url=javascript:alert(1)", "url")])
def test_lookup_rejects_bad_parameters(corpus_app, query, param):
    resp = corpus_app.test_client().get(f"/api/v1/lookup?{query}")
    assert resp.status_code == 400 and resp.json["parameter"] == param


def test_lookup_by_every_url_variant_of_every_public_record(corpus_app):
    client = corpus_app.test_client()
    store = get_store(corpus_app)
    public = [r for r in store.iter_index_rows() if r.published and not r.duplicate_of]
    checked = 0
    for row in public:
        record = store.article(row.id).record
        for field in ("originalUrl", "webUrl", "ampWebUrl", "cdnAmpWebUrl"):
            url = record.get(field)
            if not url:
                continue
            variants = [url, url.replace("https://", "http://", 1), url + ("&" if "?" in url else "?") + "utm_source=x#frag"]
            for variant in variants:
                found = client.get("/api/v1/lookup", query_string={"url": variant}).json["value"]
                assert row.id in [a["id"] for a in found], (field, variant)
                checked += 1
            digest = url_hash(normalize_url(url))
            by_prefix = client.get(f"/api/v1/lookup?prefix={digest[:8]}").json["value"]
            match = [a for a in by_prefix if digest in a["urlHashes"]]
            assert [a["id"] for a in match] == [row.id]
    assert checked > 300
    infoworld = client.get("/api/v1/lookup", query_string={
        "url": "https://www-infoworld-com.cdn.ampproject.org/c/s/www.infoworld.com/article/3667433/open-source-isnt-working-for-ai.amp.html"}).json
    assert infoworld["value"][0]["provider"]["domain"] == "infoworld.com"


def test_compat_paths_keep_the_everyday_cc_shape(corpus_app):
    client = corpus_app.test_client()
    first = client.get("/api/news/ai/index.json").json
    assert set(first) == {"title", "path", "page", "value", "nextPage", "secured"}
    assert first["path"] == "/api/news/ai/index.json" and first["page"] == 1 and len(first["value"]) == 20
    assert first["nextPage"] == "/api/news/ai/page/2/index.json"
    item = first["value"][0]
    for key in ("title", "excerpt", "publishedDateTime", "webUrl", "provider", "topics", "images"):
        assert key in item
    assert isinstance(item["topics"][0], str) and "sourceSecured" not in item
    second = client.get(first["nextPage"]).json
    assert second["page"] == 2 and not {i["webUrl"] for i in second["value"]} & {i["webUrl"] for i in first["value"]}
    assert client.get("/api/news/ai/page/99/index.json").status_code == 404


def test_revoked_client_and_its_private_feed_stop_working(paired, tmp_path):
    app, runner, instance = paired["app"], paired["runner"], paired["instance"]
    out = runner.invoke(cli, ["clients", "add", "phone", "--server-url", "http://x", "--json", "--instance", str(instance)])
    phone = json.loads(out.output)
    client = app.test_client()
    url = client.get("/api/v1/private-feed-url?feed=topics/ai&ext=rss&min_quality=50", headers=headers(phone)).json["url"]
    path = url.split("localhost", 1)[1]
    feed = client.get(path)
    assert feed.status_code == 200 and feed.content_type.startswith("application/rss+xml")
    cli_url = runner.invoke(cli, ["clients", "feed-url", phone["id"], "topics/ai", "--server-url", "http://x", "--instance", str(instance)]).output.strip()
    assert client.get("/feeds/" + cli_url.split("/feeds/", 1)[1]).status_code == 200
    listed = runner.invoke(cli, ["clients", "list", "--instance", str(instance)]).output
    assert phone["id"] in listed and phone["secret"] not in listed
    assert runner.invoke(cli, ["clients", "revoke", phone["id"], "--instance", str(instance)]).exit_code == 0
    assert client.get("/api/v1/topics", headers=headers(phone)).status_code == 401
    assert client.get(path).status_code == 404
    tampered = path.replace(path[-10], "A" if path[-10] != "A" else "B")
    assert client.get(tampered).status_code == 404
    bad_token = headers(phone) | {"Authorization": headers(phone)["Authorization"][:-3] + "abc"}
    assert client.get("/api/v1/topics", headers=bad_token).status_code == 401


def test_key_rotation_keeps_tokens_until_pruned(tmp_path):
    instance = tmp_path / "instance"
    app = create_app({"VERSION_TTL": 0}, instance)
    runner = app.test_cli_runner()
    info = json.loads(runner.invoke(cli, ["clients", "add", "a", "--server-url", "http://x", "--json",
                                          "--instance", str(instance)]).output)
    client = app.test_client()
    assert client.get("/api/v1/topics", headers=headers(info)).status_code == 200
    private = client.get("/api/v1/private-feed-url?feed=all", headers=headers(info)).json["url"].split("localhost", 1)[1]
    assert client.get(private).status_code == 200
    assert runner.invoke(cli, ["keys", "rotate", "--instance", str(instance)]).exit_code == 0
    assert client.get(private).status_code == 200  # signed with the older key: still valid
    assert len(load_keys(instance)) == 2
    resp = client.get("/api/v1/topics", headers=headers(info))
    assert resp.status_code == 200
    assert_all_verify(resp.json, info["secret"])  # the client's secret derives from its own key
    newer = json.loads(runner.invoke(cli, ["clients", "add", "b", "--server-url", "http://x", "--json",
                                           "--instance", str(instance)]).output)
    assert newer["secret"] != info["secret"]
    assert runner.invoke(cli, ["keys", "prune", "--keep", "1", "--instance", str(instance)]).exit_code == 0
    assert client.get("/api/v1/topics", headers=headers(info)).status_code == 401
    assert client.get(private).status_code == 404  # its key is gone
    assert client.get("/api/v1/topics", headers=headers(newer)).status_code == 200
    assert (instance / "keys.json").stat().st_mode & 0o777 == 0o600


def test_instance_secrets_are_private_and_never_default(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    create_app({}, a), create_app({}, b)
    assert load_keys(a) != load_keys(b)
    assert (a / "keys.json").stat().st_mode & 0o777 == 0o600


# -- curator writes ---------------------------------------------------------------------------

NEW = {"title": "Curated by hand", "excerpt": "Written through the API.", "publishedDateTime": "2030-01-02T03:04:05Z",
       "webUrl": "https://www.infoworld.com/article/9999999/curated-by-hand.html", "type": "article", "quality": 90,
       "heat": 50, "provider": {"name": "InfoWorld", "domain": "infoworld.com"}, "topics": ["AI", "Brand New Topic"]}


def admin_headers(paired) -> dict:
    token = paired["runner"].invoke(cli, ["admin-token", "--instance", str(paired["instance"])]).output.strip()
    return {"Authorization": f"Bearer {token}"}


def test_curator_create_update_delete(paired):
    client = paired["app"].test_client()
    admin = admin_headers(paired)
    created = client.post("/api/v1/articles", json=NEW, headers=admin)
    assert created.status_code == 201, created.json
    article_id = created.json["id"]
    assert article_id == "2030-01-02-curated-by-hand"
    path = paired["roots"][-1] / "_news" / f"{article_id}.md"
    assert path.exists()
    atom = client.get("/feeds/topics/ai.atom").data.decode()
    assert "Curated by hand" in atom
    assert b"Curated by hand" in client.get("/feeds/topics/brand-new-topic.rss").data
    again = client.post("/api/v1/articles", json=NEW, headers=admin)
    assert again.status_code == 409
    updated = client.put(f"/api/v1/articles/{article_id}", json=NEW | {"title": "Curated, then edited"}, headers=admin)
    assert updated.status_code == 200 and updated.json["title"] == "Curated, then edited"
    api = client.get(f"/api/v1/articles/{article_id}", headers=headers(paired["client"])).json
    assert api["title"] == "Curated, then edited"
    assert "Curated, then edited" in client.get("/feeds/topics/ai.atom").data.decode()
    assert client.delete(f"/api/v1/articles/{article_id}", headers=admin).status_code == 204
    assert not path.exists()
    assert client.get(f"/api/v1/articles/{article_id}", headers=headers(paired["client"])).status_code == 404
    assert "Curated" not in client.get("/feeds/topics/ai.atom").data.decode()
    assert client.delete(f"/api/v1/articles/{article_id}", headers=admin).status_code == 404


@pytest.mark.parametrize("body,message", [
    (NEW | {"heat": "hot"}, "field 'heat': expected an integer, got 'hot'"),
    (NEW | {"webUrl": "javascript:alert(1)"}, "field 'webUrl': only http(s) URLs are allowed"),
    ({k: v for k, v in NEW.items() if k != "title"} | {"id": "x-no-title"}, "field 'title': is required"),
    (NEW | {"publishedDateTime": "tomorrow"}, "field 'publishedDateTime': not an ISO 8601 date-time"),
])
def test_curator_validation_matches_import_messages(paired, body, message):
    resp = paired["app"].test_client().post("/api/v1/articles", json=body, headers=admin_headers(paired))
    assert resp.status_code == 400 and resp.content_type == "application/problem+json"
    assert message in resp.json["detail"]


@pytest.mark.parametrize("bad_id", ["..%2f..%2fetc%2fpasswd", "a.b", "-leading", "x" * 300])
def test_curator_rejects_path_traversal_ids(paired, bad_id):
    client = paired["app"].test_client()
    resp = client.put(f"/api/v1/articles/{bad_id}", json=NEW, headers=admin_headers(paired))
    assert resp.status_code in (400, 404)
    post = client.post("/api/v1/articles", json=NEW | {"id": "../../escape"}, headers=admin_headers(paired))
    assert post.status_code == 400 and "invalid article id" in post.json["detail"]
    assert not any(p.name.startswith("escape") for p in paired["roots"][-1].parent.rglob("*escape*"))


def test_curator_needs_the_admin_token(paired):
    client = paired["app"].test_client()
    assert client.post("/api/v1/articles", json=NEW).status_code == 401
    assert client.post("/api/v1/articles", json=NEW, headers=headers(paired["client"])).status_code == 401
    big = NEW | {"excerpt": "x" * 300_000}
    assert client.post("/api/v1/articles", json=big, headers=admin_headers(paired)).status_code == 413
    assert client.post("/api/v1/articles", data="[1,2]", headers=admin_headers(paired) | {"Content-Type": "application/json"}).status_code == 400
