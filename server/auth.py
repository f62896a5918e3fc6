"""Who is asking the API, decided once per request (as Miniflux's API middleware), and the
``admin_required`` guard for curator writes (as flaskr's ``login_required``).

After ``identify_caller`` ran, ``g.client`` is the paired client (or None), ``g.admin`` says
whether the admin token was sent, and ``g.secret`` is what answers are signed with: the
client's derived secret, else the master keys.
"""
from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, g, request
from itsdangerous import BadSignature

from feeds.store import AdminToken, Store

from .clients import client_from_token, secret_for
from .context import get_store, master_keys
from .signing import ADMIN_TOKEN, sign, unsign

F = TypeVar("F", bound=Callable[..., Any])
_PAIR_HINT = ("send 'Authorization: Bearer <token>': a client token (`topicfeed clients add NAME`), "
              "or the admin token for curator writes")


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), if any."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def mint_admin_token(store: Store, keys: list[str], note: str = "") -> str:
    """A new admin token, recorded by id in the store so it can be revoked on its own."""
    token_id = secrets.token_hex(6)
    with store.write() as tx:
        tx.add_admin_token(AdminToken(token_id, int(time.time()), note, False))
    return sign({"admin": True, "id": token_id}, ADMIN_TOKEN, keys)


def revoke_admin_token(store: Store, token_id: str) -> bool:
    """Stop one admin token working at once; False when there is no such id."""
    with store.write() as tx:
        return tx.revoke_admin_token(token_id)


def _is_admin_token(token: str, keys: list[str]) -> bool | None:
    """True for a live admin token; False for one that is revoked, unknown or minted before
    tokens had ids; None when ``token`` is not an admin token at all."""
    try:
        value = unsign(token, ADMIN_TOKEN, keys)
    except BadSignature:
        return None
    if not (isinstance(value, dict) and value.get("admin") is True):
        return None
    record = get_store().admin_token(str(value.get("id", "")))
    return record is not None and not record.revoked


def identify_caller() -> None:
    """``before_request`` of every ``/api`` blueprint: 401 for an unknown, tampered or revoked
    token, and for no token at all when ``API_ACCESS`` is ``paired``."""
    keys = master_keys()
    token = bearer_token()
    g.client, g.admin, g.secret = None, False, keys
    if token is None:
        if current_app.config["API_ACCESS"] == "paired":
            abort(401, f"this API needs a paired client: {_PAIR_HINT}")
        return
    admin = _is_admin_token(token, keys)
    if admin is False:
        abort(401, "this admin token is revoked or unknown: mint a new one with `topicfeed admin-token`")
    if admin:
        g.admin = True
        return
    client = client_from_token(get_store(), keys, token)
    if client is None:
        abort(401, "the bearer token is unknown, tampered with or revoked; pair again")
    g.client, g.secret = client, secret_for(client, keys)


def admin_required(view: F) -> F:
    """Let the view run only for a request that carried the admin token (``topicfeed admin-token``)."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not g.get("admin"):
            abort(401, "curator writes need the admin token (`topicfeed admin-token`) as 'Authorization: Bearer …'")
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def signed_answers_are_private(resp: Any) -> Any:
    """``after_request`` of every ``/api`` blueprint: answers are signed per caller, never shared."""
    resp.headers.setdefault("Cache-Control", "private, no-store")
    resp.vary.add("Authorization")
    return resp
