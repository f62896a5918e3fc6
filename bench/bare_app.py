"""Baseline for http_bench: a bare Flask app under waitress returning fixed bytes from memory."""
import sys

import waitress
from flask import Flask, Response

body = open(sys.argv[1], "rb").read()
app = Flask(__name__)


@app.get("/feed")
def feed() -> Response:
    return Response(body, content_type="application/atom+xml; charset=utf-8")


waitress.serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=8, ident="bare")
