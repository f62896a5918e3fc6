"""Curator writes under concurrency and faults (issue 9): real threads against a running server."""
from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from feeds.importer import sync
from feeds.store import Store
from server import create_app, get_store
from server.cli import main as cli

from .conftest import LiveServer
from .test_golden import CONTENT

ARTICLE = {"title": "Raced", "publishedDateTime": "2031-02-03T04:05:06Z", "topics": ["Robots"],
           "webUrl": "https://example.org/raced.html"}
ROUNDS = 100
THREADS = 8


def instance_with_content(tmp_path: Path, extra: str = "") -> tuple[Path, Path, str]:
    """An instance over a writable copy of the golden content; returns (instance, content, admin token)."""
    content = tmp_path / "site"
    shutil.copytree(CONTENT, content)
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.toml").write_text(f'content_dirs = ["{content}"]\napi_access = "public"\n{extra}')
    app = create_app({}, instance)
    sync(get_store(app), [content])
    token = app.test_cli_runner().invoke(cli, ["admin-token", "--instance", str(instance)]).output.strip()
    get_store(app).close()
    return instance, content, token


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    instance, content, token = instance_with_content(tmp_path_factory.mktemp("writes"))
    server = LiveServer(instance)
    yield {"server": server, "content": content, "token": token, "db": instance / "topicfeed.db"}
    server.stop()


def call(live, method: str, path: str, body: dict | None = None, headers: dict | None = None
         ) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on its own connection (as separate clients would make it)."""
    conn = http.client.HTTPConnection("127.0.0.1", live["server"].port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Authorization": f"Bearer {live['token']}",
                                                       "Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()  # headers: case-insensitive
    finally:
        conn.close()


def in_parallel(jobs: list) -> list:
    """Run the callables at once (released together by a barrier); their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def indexed(db: Path, article_id: str) -> tuple[str, str] | None:
    """(title, file_sha) of the article as the index holds it, read with a separate connection."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT record, file_sha FROM articles WHERE id = ?", (article_id,)).fetchone()
    return (json.loads(row[0])["title"], row[1]) if row else None


def test_concurrent_creates_of_one_id_give_one_201(live):
    for n in range(ROUNDS):
        article_id = f"race-create-{n}"
        body = ARTICLE | {"id": article_id}
        statuses = sorted(s for s, _, _ in in_parallel([lambda: call(live, "POST", "/api/v1/articles", body)] * THREADS))
        assert statuses == [201] + [409] * (THREADS - 1), (n, statuses)
        path = live["content"] / "_news" / f"{article_id}.md"
        assert indexed(live["db"], article_id) == ("Raced", hashlib.sha256(path.read_bytes()).hexdigest())


def test_mixed_puts_and_deletes_keep_file_and_index_together(live):
    article_id = "race-mixed"
    path = live["content"] / "_news" / f"{article_id}.md"
    for n in range(ROUNDS):
        jobs = []
        for t in range(THREADS):
            if t % 2:
                jobs.append(lambda: ("delete", call(live, "DELETE", f"/api/v1/articles/{article_id}")))
            else:
                title = f"round {n} writer {t}"
                jobs.append(lambda title=title: (title, call(live, "PUT", f"/api/v1/articles/{article_id}",
                                                             ARTICLE | {"title": title})))
        results = in_parallel(jobs)
        for what, (status, headers, body) in results:
            assert status < 500 or (status == 503 and "Retry-After" in headers), (what, status, body)
        succeeded = {what for what, (status, _, _) in results if 200 <= status < 300}
        assert succeeded, n
        state = indexed(live["db"], article_id)
        if path.exists():
            data = path.read_bytes()
            assert state is not None and state[1] == hashlib.sha256(data).hexdigest(), n
            assert state[0] in succeeded and f"title: {state[0]}".encode() in data, (n, state)
        else:
            assert state is None and "delete" in succeeded, n


def test_etag_and_if_match(live):
    article_id = "versioned"
    article = ARTICLE | {"webUrl": "https://example.org/versioned.html"}  # not a duplicate: GET shows it
    status, headers, _ = call(live, "PUT", f"/api/v1/articles/{article_id}", article | {"title": "v1"})
    assert status == 201
    v1 = headers["ETag"]
    path = live["content"] / "_news" / f"{article_id}.md"
    assert v1 == f'"{hashlib.sha256(path.read_bytes()).hexdigest()}"'
    assert call(live, "GET", f"/api/v1/articles/{article_id}")[1]["ETag"] == v1
    status, headers, _ = call(live, "PUT", f"/api/v1/articles/{article_id}", article | {"title": "v2"}, {"If-Match": v1})
    assert status == 200 and headers["ETag"] != v1
    v2 = headers["ETag"]
    status, _, body = call(live, "PUT", f"/api/v1/articles/{article_id}", article | {"title": "lost update"}, {"If-Match": v1})
    assert status == 412 and v2.strip('"') in json.loads(body)["detail"]
    assert call(live, "DELETE", f"/api/v1/articles/{article_id}", headers={"If-Match": v1})[0] == 412
    assert b"title: v2" in path.read_bytes() and indexed(live["db"], article_id)[0] == "v2"
    assert call(live, "DELETE", f"/api/v1/articles/{article_id}", headers={"If-Match": v2})[0] == 204
    assert call(live, "PUT", f"/api/v1/articles/{article_id}", ARTICLE, {"If-Match": "*"})[0] == 412  # gone
    assert not path.exists() and indexed(live["db"], article_id) is None


def test_put_with_if_none_match_star_only_creates(live):
    """RFC 9110 §13.1.2: `If-None-Match: *` on PUT is "create, never overwrite"."""
    article_id = "create-only"
    article = ARTICLE | {"webUrl": "https://example.org/create-only.html"}
    path = live["content"] / "_news" / f"{article_id}.md"
    status, headers, _ = call(live, "PUT", f"/api/v1/articles/{article_id}", article | {"title": "first"},
                              {"If-None-Match": "*"})
    assert status == 201
    status, _, body = call(live, "PUT", f"/api/v1/articles/{article_id}", article | {"title": "second"},
                           {"If-None-Match": "*"})
    assert status == 412 and article_id in json.loads(body)["detail"]
    assert call(live, "PUT", f"/api/v1/articles/{article_id}", article | {"title": "second"},
                {"If-None-Match": headers["ETag"]})[0] == 412
    assert b"title: first" in path.read_bytes() and indexed(live["db"], article_id)[0] == "first"


def test_a_write_waiting_past_the_bound_is_503_and_changes_nothing(tmp_path):
    instance, content, token = instance_with_content(tmp_path, "write_lock_timeout = 0.3\n")
    server = LiveServer(instance)
    live = {"server": server, "token": token}
    try:
        assert call(live, "PUT", "/api/v1/articles/busy", ARTICLE | {"title": "before"})[0] == 201
        holder = sqlite3.connect(instance / "topicfeed.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer (an import) holds the lock
        try:
            status, headers, body = call(live, "PUT", "/api/v1/articles/busy", ARTICLE | {"title": "after"})
            created = call(live, "POST", "/api/v1/articles", ARTICLE | {"id": "busy-new"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert status == 503 and headers["Retry-After"].isdigit() and b"nothing was changed" in body
        assert created[0] == 503
        assert b"title: before" in (content / "_news" / "busy.md").read_bytes()
        assert not (content / "_news" / "busy-new.md").exists()
        assert indexed(instance / "topicfeed.db", "busy")[0] == "before"
        assert call(live, "PUT", "/api/v1/articles/busy", ARTICLE | {"title": "after"})[0] == 200
    finally:
        server.stop()


def test_a_write_to_an_unmounted_content_root_is_503_and_creates_nothing(tmp_path):
    """The content disk went away under a running server: a write must not recreate the root on
    the bare mount point (hidden once the disk is back, and index and files would disagree)."""
    instance, content, token = instance_with_content(tmp_path)
    client = create_app({}, instance).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    unmounted = content.rename(tmp_path / "elsewhere")
    resp = client.put("/api/v1/articles/orphan", json=ARTICLE, headers=auth)
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit(), resp.get_data()
    assert str(content) in resp.get_json()["detail"] and "not mounted" in resp.get_json()["detail"]
    assert client.post("/api/v1/articles", json=ARTICLE | {"id": "orphan"}, headers=auth).status_code == 503
    assert not content.exists() and not (unmounted / "_news" / "orphan.md").exists()
    assert indexed(instance / "topicfeed.db", "orphan") is None


def test_an_index_failure_puts_the_file_back(tmp_path):
    instance, content, token = instance_with_content(tmp_path)
    app = create_app({}, instance)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.put("/api/v1/articles/fragile", json=ARTICLE | {"title": "kept"}, headers=auth).status_code == 201
    path = content / "_news" / "fragile.md"
    before = path.read_bytes()
    with sqlite3.connect(instance / "topicfeed.db") as db:  # a database fault at the index step
        db.execute("CREATE TRIGGER fail BEFORE INSERT ON article_urls BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    assert client.put("/api/v1/articles/fragile", json=ARTICLE | {"title": "lost"}, headers=auth).status_code == 500
    assert client.post("/api/v1/articles", json=ARTICLE | {"id": "fragile-new"}, headers=auth).status_code == 500
    assert path.read_bytes() == before and not (content / "_news" / "fragile-new.md").exists()
    assert get_store(app).article("fragile").record["title"] == "kept"
    assert get_store(app).article("fragile-new", public_only=False) is None
    assert sorted(p.name for p in (content / "_news").iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("bad", ["nl-demo%0A", "nl-demo%0D", "tab%09"])
def test_ids_with_control_characters_are_refused(tmp_path, bad):
    instance, content, token = instance_with_content(tmp_path)
    client = create_app({}, instance).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.put(f"/api/v1/articles/{bad}", json=ARTICLE, headers=auth).status_code == 400
    raw = bad.replace("%0A", "\n").replace("%0D", "\r").replace("%09", "\t")
    post = client.post("/api/v1/articles", json=ARTICLE | {"id": raw}, headers=auth)
    assert post.status_code == 400 and "invalid article id" in post.json["detail"]
    assert sorted(p.name for p in (content / "_news").iterdir()) == sorted(p.name for p in (CONTENT / "_news").iterdir())


def test_temp_and_hidden_files_are_never_records(tmp_path):
    content = tmp_path / "site"
    shutil.copytree(CONTENT, content)
    for name in (".tmp-abc.md", ".2020-01-06-x.md.k3j2.tmp", ".hidden.md", ".md"):
        (content / "_news" / name).write_bytes((CONTENT / "_news").glob("*.md").__next__().read_bytes())
    store = Store(f"sqlite:///{tmp_path / 'index.db'}")
    report = sync(store, [content])
    assert store.article(".tmp-abc", public_only=False) is None and store.article(".hidden", public_only=False) is None
    assert len(report.added) == len(list(CONTENT.glob("_news/*.md")))


def test_admin_tokens_are_revoked_one_by_one(tmp_path):
    instance, _, first = instance_with_content(tmp_path)
    app = create_app({}, instance)
    runner = app.test_cli_runner()
    second = runner.invoke(cli, ["admin-token", "--note", "ci", "--instance", str(instance)]).output.strip()
    listing = runner.invoke(cli, ["admin-token", "--list", "--instance", str(instance)]).output.splitlines()
    noted = [line for line in listing if line.endswith("\tactive\tci")]
    assert len(listing) == 2 and len(noted) == 1, listing
    token_id = noted[0].split("\t")[0]
    assert first not in "\n".join(listing) and second not in "\n".join(listing)  # tokens are never printed again
    assert runner.invoke(cli, ["admin-token", "--revoke", token_id, "--instance", str(instance)]).exit_code == 0
    client = app.test_client()
    revoked = client.put("/api/v1/articles/tok", json=ARTICLE, headers={"Authorization": f"Bearer {second}"})
    assert revoked.status_code == 401 and "revoked" in revoked.json["detail"]
    assert client.put("/api/v1/articles/tok", json=ARTICLE, headers={"Authorization": f"Bearer {first}"}).status_code == 201
    assert "revoked\tci" in runner.invoke(cli, ["admin-token", "--list", "--instance", str(instance)]).output
    missing = runner.invoke(cli, ["admin-token", "--revoke", "nope", "--instance", str(instance)])
    assert missing.exit_code == 1 and "no admin token nope" in missing.output
