"""Paired clients (the extension, scripts): ids, derived secrets, bearer tokens, pairing strings.

A client's secret is derived from a master key and its id, so nothing secret is stored per
client; revoking is a flag. Tokens stay valid across key rotation until their key is pruned.
"""
from __future__ import annotations

import base64
import json
import secrets
import time

from itsdangerous import BadSignature

from feeds.store import Client, Store

from .signing import CLIENT_TOKEN, client_secret, key_id, sign, unsign

PAIRING_PREFIX = "topicfeed-pair-v1:"


def add_client(store: Store, keys: list[str], name: str) -> Client:
    client = Client("c_" + secrets.token_hex(8), name, int(time.time()), key_id(keys[-1]), False)
    with store.write() as tx:
        tx.add_client(client)
    return client


def list_clients(store: Store) -> list[Client]:
    return store.clients()


def get_client(store: Store, client_id: str) -> Client | None:
    return store.client(client_id)


def revoke_client(store: Store, client_id: str) -> bool:
    """False when there is no such client."""
    with store.write() as tx:
        return tx.revoke_client(client_id)


def secret_for(client: Client, keys: list[str]) -> str | None:
    """The client's signing secret, or None when the key it derives from was pruned."""
    master = next((k for k in keys if key_id(k) == client.key_id), None)
    return client_secret(master, client.id) if master else None


def token_for(client: Client, keys: list[str]) -> str:
    return sign(client.id, CLIENT_TOKEN, keys)


def client_from_token(store: Store, keys: list[str], token: str) -> Client | None:
    """The active client a bearer token names; None if tampered, unknown, revoked or pruned."""
    try:
        client_id = unsign(token, CLIENT_TOKEN, keys)
    except BadSignature:
        return None
    client = get_client(store, client_id) if isinstance(client_id, str) else None
    if client is None or client.revoked or secret_for(client, keys) is None:
        return None
    return client


def pairing_string(server_url: str, client: Client, keys: list[str]) -> str:
    """What the user pastes into the extension: server URL, client id, secret and token."""
    payload = {"server": server_url.rstrip("/"), "client": client.id, "secret": secret_for(client, keys),
               "token": token_for(client, keys)}
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return PAIRING_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
