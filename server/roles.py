"""Process roles of a scale-out deployment (README "Scaling out"): ``single`` does everything,
``writer`` is the one process that owns the local-disk state (curator record files, imports,
``import --watch``, migrations, keys.json), ``reader`` serves reads from the shared index.

A reader refuses a write before doing anything: the record file would land on the reader's
own disk, where the writer's next import would drop the article. The answer is ``421
Misdirected Request`` (RFC 9110 §15.5.20: the request reached a server that is unwilling to
produce an authoritative response for it; a client may retry it elsewhere), not 403 (nothing is
wrong with the caller's rights) nor 409 (the resource is in no conflicting state; the curator
API already uses 409 for that). Under ``/api`` the body is RFC 9457 problem details with a
``writer`` member (the writer's base URL); elsewhere one plain-text line naming it.

One key set: the writer records the id of its signing key (``server.signing.key_id``, a hash,
not the key) in the shared index; a reader refuses to start when none of its keys has that id
(its keys.json is not the writer's: tokens would fail and signatures differ on it).

One writer: every ``single`` or ``writer`` process claims the writer lease when its app is built
(``claim_writer``, ``server.writerlock``): a second writer instance on the same database is
refused in one line. A writer whose lease another writer took over (``topicfeed writer
take-over``) answers writes 421 like a reader, naming the instance that holds it now.

Writes that touch only the shared database are allowed on any process: the WebSub hub's
subscribe requests queue a row (``server.websub_hub``). Client pairing and admin tokens are
command-line only and write only the database, so they work on any instance folder.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feeds.store import Store, WriterFenced

from .signing import key_id
from .writerlock import WriterLease, describe

if TYPE_CHECKING:  # Flask is imported where requests are handled: the CLI's import checks is_reader without it
    from flask import Flask, Response

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# endpoints that write only the shared database: safe on any process
DATABASE_ONLY_WRITES = frozenset({"websub.hub"})
_LEASE = "topicfeed.lease"
SIGNING_KEY_META = "writer_signing_key"  # meta row: key_id of the writer's newest (signing) master key


def is_reader(config: Mapping[str, Any]) -> bool:
    """Whether these settings make a read-only process (``role = 'reader'``)."""
    return config["ROLE"] == "reader"


def refusal(config: Mapping[str, Any], what: str) -> str:
    """The one-line reason a reader gives for not doing ``what`` (e.g. "imports")."""
    return (f"this is a reader (role = 'reader'): {what} are the writer's job, at {config['WRITER_URL']} "
            "(record files, imports, migrations and keys.json live on its disk)")


def _refuse_writes() -> Response | None:
    """``before_request`` of a reader: 421 for a write method, unless the endpoint writes only
    the database. Runs before the API's authentication, so nothing at all is done."""
    from flask import current_app, request

    from .errors import error_response

    if request.method in READ_METHODS or request.endpoint in DATABASE_ONLY_WRITES:
        return None
    if request.routing_exception is not None:  # no such route or method: the 404/405 says more
        return None
    config = current_app.config
    return error_response(421, refusal(config, f"{request.method} requests"), writer=config["WRITER_URL"])


def _refuse_writes_after_take_over() -> Response | None:
    """``before_request`` of a writer: 421 for a write method once another writer took the
    lease over (this process's record files are no longer the ones imported)."""
    from flask import current_app, request

    lease = writer_lease(current_app)
    if request.method in READ_METHODS or lease is None or not lease.lost.is_set():
        return None
    return _taken_over()


def _taken_over(_exc: Exception | None = None) -> Response:
    """421 naming the writer that took the lease over (also for a write the store's fence
    stopped midway: ``feeds.store.WriterFenced``, rolled back)."""
    from flask import current_app

    from .errors import error_response

    lease = writer_lease(current_app)
    now = lease.store.lease.current() if lease is not None else None
    holder = describe(now) if now else "another instance"
    return error_response(421, f"this process is no longer the writer: {holder} took the writer lease over; "
                               "send writes there", writer=holder)


def init_app(app: Flask) -> None:
    """On a reader, refuse writes (every method but GET/HEAD/OPTIONS) before any view runs; on
    a writer, the same once its lease was taken over."""
    if is_reader(app.config):
        app.before_request(_refuse_writes)
    else:
        app.before_request(_refuse_writes_after_take_over)
        app.register_error_handler(WriterFenced, _taken_over)


def claim_writer(app: Flask, store: Store, instance: Path) -> None:
    """Claim the writer lease for ``instance`` (``WriterBusy`` when another writer holds it)
    and keep it on the app for ``serve`` to renew (``writer_lease``)."""
    lease = WriterLease(store, instance, app.config["WRITER_LEASE_SECONDS"])
    lease.claim()
    app.extensions[_LEASE] = lease


def writer_lease(app: Flask) -> WriterLease | None:
    """The app's writer lease (None on a reader)."""
    return app.extensions.get(_LEASE)


def publish_signing_key(store: Store, keys: list[str]) -> None:
    """On the writer: record the id of its signing key (the newest of ``keys``) for readers to
    check theirs against; a write only when it changed, and one that keeps the store version
    (no reader drops its caches for it)."""
    ident = key_id(keys[-1])
    if store.get_meta(SIGNING_KEY_META) != ident:
        with store.write() as tx:
            tx.keep_version = True
            tx.set_meta(SIGNING_KEY_META, ident)


def check_signing_key(store: Store, keys: list[str], instance: str) -> None:
    """On a reader: ``RuntimeError`` (one line) when the writer's signing key, as recorded by
    ``publish_signing_key``, is not among ``keys`` (this instance's keys.json)."""
    published = store.get_meta(SIGNING_KEY_META)
    if published is not None and published not in {key_id(key) for key in keys}:
        raise RuntimeError(f"this reader's keys.json does not hold the writer's signing key (id {published}): "
                           f"copy the writer's keys.json into {instance} (README \"Scaling out\")")
