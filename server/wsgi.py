"""WSGI entry points for HTTP servers (``server.serving``): the app of the instance named by
``TOPICFEED_INSTANCE`` (default ./instance), with one access-log line per request."""
from __future__ import annotations

import logging

from . import create_app
from .requestlog import RequestLog
from .serving import WSGIApp


def app() -> WSGIApp:
    """The logged topicfeed app (a factory: servers with worker processes call it in each)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return RequestLog(create_app())
