"""What each WSGI layer in front of Flask costs per warm request, without a server or a socket:
the callable is called in a loop with a prepared environ (one thread, CPU time per call).

Usage: python bench/wsgi_overhead.py [--instance DIR] [--path P] [--calls N] [--label TEXT]

Since branch fastlayer one WSGI layer (``server.front``) answers fast-path hits: the lookup
(``server.fastpath``), the /metrics count and the access-log line. Rows: the raw callable, the
fast path's lookup alone, the front layer without the access log, and the whole stack
(``server.cli.wsgi_app``: with the access log, written to a file as a served instance writes its
log). The access log's lines are formatted and written by a thread; its CPU time is counted
(process CPU time, queued lines flushed before the clock stops).
"""
from __future__ import annotations

import argparse
import copy
import io
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, record

BASE = "https://feeds.example.net"


def environ(path: str, extra: dict[str, str] | None = None) -> dict[str, object]:
    """The environ a server hands over for ``GET path`` (waitress's keys)."""
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8080", "HTTP_USER_AGENT": "wrk", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0), **(extra or {})}


def per_call_us(app, env: dict[str, object], calls: int) -> float:
    """CPU microseconds per call of ``app`` (the body is iterated and closed, as a server does),
    the process's CPU time, so the access-log thread's formatting and writing count too."""
    from server.requestlog import flush

    def start_response(status, headers, exc_info=None):
        return None

    started = time.process_time()
    for _ in range(calls):
        result = app(dict(env), start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close:
            close()
    flush()
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instance", type=Path, default=OUT / "import-instance-100000")
    parser.add_argument("--path", default="/feeds/topics/ai.atom")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--label", default="", help="added to the section title (e.g. the commit measured)")
    args = parser.parse_args()
    metrics_dir = tempfile.mkdtemp(prefix="wsgi-overhead-metrics-")
    # as `topicfeed serve` runs it: /metrics counters in prometheus_client's multiprocess mode
    os.environ.update(TOPICFEED_INSTANCE=str(args.instance), TOPICFEED_PUBLIC_BASE_URL=BASE,
                      PROMETHEUS_MULTIPROC_DIR=metrics_dir)
    log_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    logging.basicConfig(stream=log_file)
    from server.cli import wsgi_app

    full = wsgi_app()  # server.front.Front, with the access log on
    unlogged = copy.copy(full)
    unlogged.logging = False
    fast = full.fast

    def lookup(environ, start_response):
        status, headers, _labels, body = fast.answer(environ)
        start_response(status, headers)
        return body
    plain = environ(args.path)
    cond = environ(args.path, {"HTTP_IF_NONE_MATCH": ""})
    body_headers: list[tuple[str, str]] = []
    b"".join(full(dict(plain), lambda s, h, e=None: body_headers.extend(h)))  # recorded by the fast path
    etag = dict(body_headers)["ETag"]
    cond["HTTP_IF_NONE_MATCH"] = etag
    b"".join(full(dict(cond), lambda s, h, e=None: None))
    body = b"".join(full(dict(plain), lambda s, h, e=None: None))
    headers = [("Content-Type", "application/atom+xml; charset=utf-8"), ("Content-Length", str(len(body)))]

    def raw(environ, start_response):
        start_response("200 OK", headers)
        return [body]

    stacks = [("raw WSGI callable (the same bytes)", raw),
              ("fast path's lookup alone (FastPath.answer)", lookup),
              ("front layer: lookup + /metrics count (server.front, no access log)", unlogged),
              ("+ access log: the whole stack (server.cli.wsgi_app)", full)]
    rows = ["| layers called | warm 200, us/call | 304, us/call |", "|---|---:|---:|"]
    for name, app in stacks:
        per_call_us(app, plain, args.calls // 10)  # warm-up
        rows.append(f"| {name} | {per_call_us(app, plain, args.calls):.1f} | {per_call_us(app, cond, args.calls):.1f} |")
    rows += ["", f"{args.path} from {args.instance.name}, {args.calls:,} calls per cell, one thread, CPU time "
             f"(time.process_time) per call; access log written to a file, /metrics in multiprocess mode (as `serve`). Load average at the end: "
             f"{open('/proc/loadavg').read().split()[1]}."]
    log_file.close()
    os.unlink(log_file.name)
    shutil.rmtree(metrics_dir)
    label = f", {args.label}" if args.label else ""
    record(f"WSGI layers: CPU per warm request without a server (bench/wsgi_overhead.py{label})", rows)


if __name__ == "__main__":
    main()
