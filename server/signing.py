"""Signing in one place: the ``secured`` field of JSON objects, and namespaced tokens.

``secured`` contract (DESIGN.md; the JavaScript side in extension/lib/secured.js):
canonical = JSON of the object without ``secured``, keys sorted, separators ``,``/``:``,
UTF-8, no ASCII escaping, no floats; digest = base64url(SHA-256(canonical)) unpadded;
secured = TimestampSigner(secret, salt="topicfeed.secured.v1", sha256, key_derivation="hmac")
.sign(digest) = ``digest.timestamp.signature``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer

SECURED_SALT = "topicfeed.secured.v1"
# Token namespaces (the itsdangerous salt): a token of one kind never passes as another.
CLIENT_TOKEN = "topicfeed.client-token.v1"
ADMIN_TOKEN = "topicfeed.admin-token.v1"
PRIVATE_FEED = "topicfeed.private-feed.v1"
CLIENT_SECRET = "topicfeed.client-secret.v1"

Secret = str | list[str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _reject_floats(value: Any, where: str = "$") -> None:
    if isinstance(value, float):
        raise TypeError(f"signed objects hold no floats: {where} = {value!r}")
    if isinstance(value, dict):
        if "secured" in value and where != "$":
            return  # a nested object signed earlier was checked then
        for k, v in value.items():
            _reject_floats(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _reject_floats(v, f"{where}[{i}]")


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    """The bytes that are signed: the object without its own ``secured`` key."""
    body = {k: v for k, v in obj.items() if k != "secured"}
    _reject_floats(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def object_digest(obj: dict[str, Any]) -> str:
    return _b64(hashlib.sha256(canonical_bytes(obj)).digest())


class _SecuredSigner(TimestampSigner):
    """TimestampSigner that derives each key once (itsdangerous derives it on every call)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        cache = self.__dict__.setdefault("_derived", {})
        if secret_key not in cache:
            cache[secret_key] = super().derive_key(secret_key)
        return cache[secret_key]


class _FixedClockSigner(_SecuredSigner):
    """For reproducible test vectors only: signs with a given timestamp."""

    fixed_timestamp = 0

    def get_timestamp(self) -> int:
        return self.fixed_timestamp


@lru_cache(maxsize=256)
def _signer(secrets: tuple[str, ...], timestamp: int | None) -> TimestampSigner:
    cls: type[_SecuredSigner] = _SecuredSigner
    if timestamp is not None:
        cls = type("FixedClock", (_FixedClockSigner,), {"fixed_timestamp": timestamp})
    return cls(list(secrets), salt=SECURED_SALT, digest_method=hashlib.sha256, key_derivation="hmac")


def secured_signer(secret: Secret, timestamp: int | None = None) -> TimestampSigner:
    """A list of secrets rotates: the last one signs, all of them verify."""
    return _signer((secret,) if isinstance(secret, str) else tuple(secret), timestamp)


def sign_object(obj: dict[str, Any], secret: Secret, timestamp: int | None = None) -> dict[str, Any]:
    """A copy of ``obj`` with ``secured`` set (nested objects must already carry theirs)."""
    signed = {k: v for k, v in obj.items() if k != "secured"}
    signed["secured"] = secured_signer(secret, timestamp).sign(object_digest(signed)).decode("ascii")
    return signed


def verify_object(obj: dict[str, Any], secret: Secret, max_age: int | None = None) -> bool:
    """Recompute the digest, check the signature (constant time) and the age."""
    token = obj.get("secured")
    if not isinstance(token, str):
        return False
    try:
        digest = secured_signer(secret).unsign(token, max_age=max_age).decode("ascii")
    except BadSignature:
        return False
    return hmac.compare_digest(digest, object_digest(obj))


def sign(value: Any, namespace: str, keys: list[str]) -> str:
    """A URL-safe token carrying ``value``, signed with the newest master key."""
    return URLSafeSerializer(keys, salt=namespace, signer_kwargs={"digest_method": hashlib.sha256}).dumps(value)


def unsign(token: str, namespace: str, keys: list[str]) -> Any:
    """The value of a token signed by any current master key; raises ``BadSignature``."""
    return URLSafeSerializer(keys, salt=namespace, signer_kwargs={"digest_method": hashlib.sha256}).loads(token)


def key_id(master_key: str) -> str:
    """A public name for a master key (clients remember which key their secret comes from)."""
    return hashlib.sha256(("topicfeed.key-id:" + master_key).encode()).hexdigest()[:12]


def client_secret(master_key: str, client_id: str) -> str:
    """Per-client secret derived from a master key: nothing secret is stored per client."""
    return _b64(hmac.new(master_key.encode(), f"{CLIENT_SECRET}:{client_id}".encode(), hashlib.sha256).digest())
