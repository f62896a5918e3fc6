"""The WebSub hub endpoint: ``POST /websub`` (W3C WebSub Recommendation §5.1).

A valid request is answered ``202 Accepted`` and queued; the worker (``server.websub_worker``)
verifies the subscriber's intent later. This view makes no outbound request (not even a DNS
lookup): every check here is on the request itself and the store. Invalid requests get a
one-line 4xx naming the parameter (§5.1.2); policy denials (caps) are sent to the callback
asynchronously as ``hub.mode=denied`` (§5.2).
"""
from __future__ import annotations

import threading
import time

from flask import Blueprint, Response, abort, current_app, request

from feeds.errors import QueryError

from .context import get_store
from .websub_http import CallbackRefused, check_literal
from .websub_topics import feed_exists, parse_topic

bp = Blueprint("websub", __name__)
MAX_SECRET_BYTES = 199  # §5.1: hub.secret MUST be less than 200 bytes
MAX_CALLBACK_LENGTH = 2048


class RateLimit:
    """Requests per minute per client address, in one fixed window per address (per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        minute = int(time.time() // 60)
        with self._lock:
            if len(self._windows) > 10_000:  # forget old windows: memory stays bounded
                self._windows = {a: w for a, w in self._windows.items() if w[0] == minute}
            start, count = self._windows.get(address, (minute, 0))
            if start != minute:
                start, count = minute, 0
            self._windows[address] = (start, count + 1)
            return count < self.per_minute


def _limiter() -> RateLimit:
    return current_app.extensions.setdefault("topicfeed.websub_rate",
                                             RateLimit(current_app.config["WEBSUB_RATE_LIMIT"]))


def lease_for(requested: str | None) -> int:
    """The lease granted (seconds): the subscriber's ``hub.lease_seconds`` hint within the
    configured bounds, else the default. WebSub §5.1/§5.3 let the hub choose the lease, so a hint
    beyond the maximum (however many digits) is cut to it, not refused; only a value that is not
    a whole number is refused (``QueryError``). The verification GET reports the lease granted."""
    config = current_app.config
    hint = (requested or "").strip()
    if hint == "":
        return config["WEBSUB_LEASE_SECONDS"]
    if not hint.isascii() or not hint.isdigit():
        raise QueryError("hub.lease_seconds", f"hub.lease_seconds must be a whole number of seconds, got {hint[:40]!r}")
    longest = config["WEBSUB_MAX_LEASE_SECONDS"]
    hint = hint.lstrip("0") or "0"
    # compare by length first: int() of thousands of digits is slow and refused past 4300 digits
    wanted = longest if len(hint) > len(str(longest)) else min(int(hint), longest)
    return max(config["WEBSUB_MIN_LEASE_SECONDS"], wanted)


@bp.post("/websub")
def hub() -> Response:
    """Accept a subscribe/unsubscribe request; 202 and a queued verification of intent."""
    config = current_app.config
    if config["WEBSUB_HUB"] or not config["PUBLIC_BASE_URL"]:
        abort(404, "this server runs no WebSub hub (set public_base_url, and no websub_hub)")
    if not _limiter().allow(request.remote_addr or "-"):
        abort(429, f"too many hub requests: at most {config['WEBSUB_RATE_LIMIT']} a minute")
    form = request.form
    mode = form.get("hub.mode", "")
    if mode not in ("subscribe", "unsubscribe"):
        raise QueryError("hub.mode", f"hub.mode must be subscribe or unsubscribe, got {mode[:40]!r}")
    callback = form.get("hub.callback", "")
    if not callback:
        raise QueryError("hub.callback", "hub.callback is missing: the subscriber's URL to verify and deliver to")
    if len(callback) > MAX_CALLBACK_LENGTH:
        raise QueryError("hub.callback", f"hub.callback must be a URL of at most {MAX_CALLBACK_LENGTH} characters")
    try:
        check_literal(callback, config["WEBSUB_ALLOW_PRIVATE"])
    except CallbackRefused as exc:
        raise QueryError("hub.callback", f"hub.callback {exc}") from None
    given_topic = form.get("hub.topic", "")
    topic = parse_topic(given_topic)
    store = get_store()
    if mode == "subscribe" and not feed_exists(store, topic.ref):
        raise QueryError("hub.topic", f"hub.topic names no feed that exists: {topic.url[:80]!r}")
    secret = form.get("hub.secret")
    if secret is not None and len(secret.encode("utf-8")) > MAX_SECRET_BYTES:
        raise QueryError("hub.secret", f"hub.secret must be less than 200 bytes, got {len(secret.encode('utf-8'))}")
    lease = lease_for(form.get("hub.lease_seconds"))
    store.websub.enqueue("verify", callback, topic.url, {"mode": mode, "secret": secret or None, "lease_seconds": lease,
                                                         "given_topic": given_topic})
    return Response("accepted: the hub will verify this request with the callback\n", status=202,
                    content_type="text/plain; charset=utf-8")
