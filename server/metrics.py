"""``/metrics`` in the Prometheus text format (``prometheus_client``), for the networks in
``metrics_allow`` only.

Per-process counters (requests by route family and status, render cache lookups) follow
``prometheus_client``'s multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (``serve``
sets it), so several worker processes add up instead of each answering with its own share.
Facts about the index (articles, bad files, the import log) are read from the store when
scraped: imports run in other processes, and the database is what they share.
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from feeds.store import Store

from .context import get_store, render_cache
from .fastpath import FAMILY

# Whether this process's counters live in PROMETHEUS_MULTIPROC_DIR: prometheus_client decides
# once, when it is imported. /metrics must read them where they are, even if the variable was
# set later in the process (a `serve` run in-process, as the CLI tests do).
_MULTIPROCESS = values.ValueClass is not values.MutexValue
REQUESTS = Counter("topicfeed_http_requests", "HTTP requests answered, by route family and status",
                   ["family", "status"])
RENDER_LOOKUPS = Counter("topicfeed_render_cache_lookups", "Rendered-document cache lookups", ["outcome"])

bp = Blueprint("metrics", __name__)


class StoreCollector:
    """Gauges and counters read from the index at scrape time (the same for every process)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        stats = self.store.stats()
        articles = GaugeMetricFamily("topicfeed_articles", "Articles in the index", labels=["state"])
        articles.add_metric(["stored"], stats["articles"])
        articles.add_metric(["public"], stats["public"])
        yield articles
        yield GaugeMetricFamily("topicfeed_bad_files", "Content files the last import could not use",
                                value=stats["bad_files"])
        imports = CounterMetricFamily("topicfeed_imports", "Imports recorded in the index, by result", labels=["result"])
        for result in ("ok", "failed"):
            imports.add_metric([result], self.store.import_counts().get(result, 0))
        yield imports
        last = self.store.last_import()
        if last is not None:
            yield GaugeMetricFamily("topicfeed_last_import_timestamp_seconds", "When the last import ended",
                                    value=last.finished_ts)
            yield GaugeMetricFamily("topicfeed_last_import_duration_seconds", "How long the last import took",
                                    value=last.duration_s)
            yield GaugeMetricFamily("topicfeed_last_import_ok", "1 if the last import succeeded",
                                    value=1 if last.result == "ok" else 0)
        yield from self._websub()

    def _websub(self) -> Iterator[Metric]:
        """The WebSub counts /healthz reports (issue 14), as gauges: the outcomes are those of
        the last 24 hours, so they fall as well as rise."""
        hub = self.store.websub.health()
        yield GaugeMetricFamily("topicfeed_websub_subscriptions", "Live WebSub subscriptions", value=hub["subscriptions"])
        yield GaugeMetricFamily("topicfeed_websub_queued", "WebSub hub requests queued", value=hub["queued"])
        yield GaugeMetricFamily("topicfeed_websub_deliveries", "WebSub deliveries made in the last 24 hours",
                                value=hub["deliveries"])
        yield GaugeMetricFamily("topicfeed_websub_failures", "WebSub hub requests given up in the last 24 hours",
                                value=hub["failures"])
        if hub["median_delivery_ms"] is not None:
            yield GaugeMetricFamily("topicfeed_websub_median_delivery_seconds",
                                    "Median change-to-delivery delay over the last 24 hours",
                                    value=hub["median_delivery_ms"] / 1000)


class _ThisProcess:
    """The default registry's metrics (one process: no multiprocess directory)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


@bp.get("/metrics")
def metrics() -> Response:
    # The peer's own address, not one ProxyFix took from X-Forwarded-For: Prometheus scrapes the
    # app port directly (the shipped nginx site answers /metrics with 404), so a forwarded
    # address here could only come from a client claiming to be loopback.
    peer = request.environ.get("werkzeug.proxy_fix.orig", request.environ).get("REMOTE_ADDR")
    addr = ipaddress.ip_address(peer or "0.0.0.0")
    if not any(addr in ipaddress.ip_network(n, strict=False) for n in current_app.config["METRICS_ALLOW"]):
        abort(403, description=f"/metrics is not served to {addr} (setting metrics_allow)")
    registry = CollectorRegistry(auto_describe=False)
    if _MULTIPROCESS and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    registry.register(StoreCollector(get_store()))  # type: ignore[arg-type]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def _family() -> None:
    """Route family of the matched endpoint: the blueprint path (``feeds``, ``api.v1``,
    ``api.curator`` …), or the view for the top-level pages (``home``, ``health``)."""
    endpoint = request.endpoint or ""
    blueprint, _, view = endpoint.rpartition(".")
    request.environ[FAMILY] = view if blueprint in ("home", "") and view else blueprint or "unmatched"


def _counting(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Count every answer at the WSGI edge, so errors that escape Flask's handlers count too."""
    children: dict[tuple[str, str], Any] = {}  # (family, status) -> its counter: labels() costs more than inc()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def counted(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            key = (environ.get(FAMILY, "unmatched"), status[:3])
            child = children.get(key)
            if child is None:
                child = children.setdefault(key, REQUESTS.labels(*key))
            child.inc()
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, counted)

    return app


def init_app(app: Flask) -> None:
    """Register ``/metrics``, the request counter and the render cache's hit/miss counter."""
    app.register_blueprint(bp)
    app.before_request(_family)
    app.wsgi_app = _counting(app.wsgi_app)  # type: ignore[method-assign]
    hits, misses = RENDER_LOOKUPS.labels("hit"), RENDER_LOOKUPS.labels("miss")
    render_cache(app).on_lookup = lambda hit: (hits if hit else misses).inc()
