"""Who is asking the API, decided once per request (as Miniflux's API middleware), and the
``admin_required`` guard for curator writes (as flaskr's ``login_required``).

After ``identify_caller`` ran, ``g.client`` is the paired client (or None), ``g.admin`` says
whether the admin token was sent, and ``g.secret`` is what answers are signed with: the
client's derived secret, else the master keys.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, g, request
from itsdangerous import BadSignature

from .clients import client_from_token, secret_for
from .context import get_store, master_keys
from .signing import ADMIN_TOKEN, unsign

F = TypeVar("F", bound=Callable[..., Any])
_PAIR_HINT = ("send 'Authorization: Bearer <token>': a client token (`topicfeed clients add NAME`), "
              "or the admin token for curator writes")


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), if any."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def _is_admin_token(token: str, keys: list[str]) -> bool:
    try:
        value = unsign(token, ADMIN_TOKEN, keys)
    except BadSignature:
        return False
    return isinstance(value, dict) and value.get("admin") is True


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
    if _is_admin_token(token, keys):
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
