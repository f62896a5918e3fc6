"""One log line per request (the servers log none of their own): client, method, path, status, bytes, time.

A line is one line whatever the request held: control characters, quotes and backslashes in
the method or path are escaped (``\\xNN``), so a CR/LF in a URL cannot forge a second entry.
Capabilities and readers' browsing are kept out of the log: the token of a private feed URL
and the values of the lookup parameters ``url`` and ``prefix`` are replaced by ``REDACTED``.

The layer calls the app at once and returns its iterable (PEP 3333): the app's
``start_response`` runs before the server looks at the answer. A generator here would delay
it to the first iteration, which PEP 3333 allows but granian does not support (it sends 200
without headers: granian issue #845, "wontfix"). A list answer (the fast path's) is logged at
once; any other is logged when the server closes it.

Writing a line through ``logging`` costs more than answering a cached feed (a ``LogRecord``,
a formatter, a flush: about 35 µs against 10). When the root logger has the one stream handler
that ``topicfeed serve`` sets up (``server.logs``, text or JSON), a request only queues its
facts; a daemon thread formats them the same way every ``FLUSH_SECONDS`` and writes the batch
to that handler's stream under its lock (and at exit), so a line appears at most about that
late. With any other logging set-up (more handlers, filters, other formats) the line goes
through ``logging`` at once, as usual. The level of the ``topicfeed.access`` logger is honoured
either way.
"""
from __future__ import annotations

import atexit
import collections
import functools
import json
import logging
import multiprocessing.util
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_plus

from pythonjsonlogger.json import JsonFormatter

from .logs import TEXT_FORMAT

log = logging.getLogger("topicfeed.access")
FLUSH_SECONDS = 0.2  # how late a queued line may reach the log

REDACTED = "REDACTED"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')
# any segment after a /private/ folder, wherever it sits: `/feeds//private/T.atom` (redirected)
# and `/feeds/private/T.atom/` (a typo) carry a working token too
_PRIVATE_FEED = re.compile(r"(/private/+)[^/]*?(\.[a-z]+)?(?=/|$)")
_SECRET_KEYS = frozenset({"url", "prefix"})
_QUERY_PART = re.compile(r"([^&;=]*)(=?)([^&;]*)")


def escape(text: str) -> str:
    """``text`` with every control character, ``"`` and ``\\`` as ``\\xNN``: one printable line."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@functools.lru_cache(maxsize=1024)
def loggable_target(path: str, query: str) -> str:
    """The request target as logged: private feed tokens and lookup values redacted, escaped.
    Cached: readers poll the same few URLs (bounded, so distinct URLs only cost a miss)."""
    path = _PRIVATE_FEED.sub(lambda m: m.group(1) + REDACTED + (m.group(2) or ""), path)
    if query:
        path += "?" + _QUERY_PART.sub(_redact_param, query)
    return escape(path)


def _redact_param(part: re.Match[str]) -> str:
    """One ``key=value`` of the query, its value redacted when the key, decoded as the app
    decodes it (``%75rl`` is ``url``), names a lookup parameter."""
    key, equals, value = part.groups()
    return key + equals + (REDACTED if equals and unquote_plus(key).lower() in _SECRET_KEYS else value)


class _Lines:
    """Access lines written straight to the root logger's one stream handler, formatted as its
    formatter would (``server.logs``: ``TEXT_FORMAT``, or JSON with time, level, logger, message)."""

    def __init__(self, handler: logging.StreamHandler[Any], as_json: bool) -> None:
        self.handler, self.as_json = handler, as_json
        self.lock = handler.lock or threading.RLock()  # logging's own lock: lines never interleave
        self._second = (-1, "")  # (epoch second, its formatted local time): formatted once a second
        self.queue: collections.deque[tuple[float, str, str, str, str, str, int, float]] = collections.deque()
        _writers.add(self)
        _start_writer()

    @classmethod
    def of_root(cls) -> _Lines | None:
        """The writer for the current logging set-up; None when lines must go through ``logging``."""
        root = logging.getLogger()
        if len(root.handlers) != 1 or root.filters or log.handlers or log.filters or not log.propagate:
            return None
        handler = root.handlers[0]
        formatter = handler.formatter
        if type(handler) is not logging.StreamHandler or handler.filters or formatter is None:
            return None
        if isinstance(formatter, JsonFormatter):
            return cls(handler, True)
        if type(formatter) is logging.Formatter and formatter._fmt == TEXT_FORMAT and formatter.datefmt is None:
            return cls(handler, False)
        return None

    def add(self, facts: tuple[float, str, str, str, str, str, int, float]) -> None:
        """Queue one request's line: (epoch time, client, method, path, query, status, bytes, ms)."""
        self.queue.append(facts)  # atomic: no lock on the request's thread

    def flush(self) -> None:
        """Format and write every queued line, in order, stamped with its request's local time."""
        if not self.queue:
            return
        out = []
        popleft = self.queue.popleft
        while True:
            try:
                now, remote, method, path, query, status, size, ms = popleft()
            except IndexError:
                break
            second = int(now)
            if second != self._second[0]:
                self._second = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
            stamp = f"{self._second[1]},{int((now - second) * 1000):03d}"
            message = _message(remote, method, path, query, status, size, ms)
            if self.as_json:
                out.append(json.dumps({"time": stamp, "level": "INFO", "logger": log.name, "message": message}) + "\n")
            else:
                out.append(f"{stamp} {log.name} {message}\n")
        with self.lock:
            try:
                self.handler.stream.write("".join(out))
                self.handler.stream.flush()
            except (OSError, ValueError):  # a closed or broken log stream must not fail the server
                pass


_writers: weakref.WeakSet[_Lines] = weakref.WeakSet()
_writer: list[threading.Thread] = []
_flush_lock = threading.Lock()  # the writer thread and ``flush`` never interleave batches


def flush() -> None:
    """Write every queued access line now (the writer thread does every ``FLUSH_SECONDS``)."""
    with _flush_lock:
        for lines in list(_writers):
            lines.flush()


def _start_writer() -> None:
    """The one daemon thread per process that writes queued lines, and a last flush at exit."""
    if _writer:
        return

    def run() -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            flush()

    _writer.append(threading.Thread(target=run, name="access-log", daemon=True))
    _writer[0].start()
    atexit.register(flush)
    # processes started by multiprocessing (granian's workers) end with os._exit, skipping atexit
    multiprocessing.util.Finalize(None, flush, exitpriority=0)  # a broken stream is ignored by _Lines.flush


@functools.lru_cache(maxsize=1024)
def _request(remote: str, method: str, path: str, query: str) -> str:
    """The start of a line: client and "method target" (redacted, escaped). Cached: readers
    poll the same few URLs from a few addresses."""
    return f'{escape(remote)} "{escape(method)} {loggable_target(path, query)}"'


def _message(remote: str, method: str, path: str, query: str, status: str, size: int, ms: float) -> str:
    """The logged message: client, "method target", status, bytes, time."""
    return f"{_request(remote, method, path, query)} {status} {size} {ms:.1f}ms"


def _write(lines: _Lines | None, environ: dict[str, Any], status: str, size: int, started: float) -> None:
    """Log one answered request: ``status`` (3 digits or ``-``), ``size`` bytes, time since ``started``."""
    if not log.isEnabledFor(logging.INFO):
        return
    facts = (time.time(), environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD", "-"),
             environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), status, size,
             (time.perf_counter() - started) * 1000)
    if lines is None:
        log.info("%s", _message(*facts[1:]))
    else:
        lines.add(facts)


class _Logged:
    """The app's iterable, counted as the server sends it and logged when the server closes it."""

    __slots__ = ("body", "environ", "lines", "size", "started", "status")

    def __init__(self, body: Iterable[bytes], lines: _Lines | None, environ: dict[str, Any], status: list[str],
                 started: float) -> None:
        self.body, self.lines, self.environ, self.status, self.started, self.size = body, lines, environ, status, started, 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            _write(self.lines, self.environ, self.status[-1] if self.status else "-", self.size, self.started)


class RequestLog:
    """WSGI middleware; the query string is logged (redacted), request bodies and headers are not."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        """Wrap ``app``; call it after logging is set up (the line writer is chosen here)."""
        self.app = app
        self.lines = _Lines.of_root()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = []

        def capture(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(line[:3])
            return start_response(line, headers, exc_info)

        try:
            body = self.app(environ, capture)
        except BaseException:
            _write(self.lines, environ, "-", 0, started)
            raise
        if type(body) is list:  # complete already: log now, hand the list on (servers send lists fastest)
            _write(self.lines, environ, status[-1] if status else "-", sum(map(len, body)), started)
            return body
        return _Logged(body, self.lines, environ, status, started)
