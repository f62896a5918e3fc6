# topicfeed in a container: a venv on a small Debian base, run as its own user.
#   docker build -t topicfeed .          (podman: add --format docker to keep the HEALTHCHECK)
#   docker run -d -p 127.0.0.1:8080:8080 -v topicfeed-instance:/var/lib/topicfeed/instance \
#       -v /srv/news:/srv/content:ro -e TOPICFEED_CONTENT_DIRS=/srv/content topicfeed
# Settings are TOPICFEED_* variables (README "Configuration"); keys.json lives in the instance volume.
# BASE must provide python3 (3.11+) with venv: the default, or a local Debian image (tests/test_container.py).
ARG BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE} AS build
# Dependencies first, in a layer that only pyproject.toml invalidates: empty packages stand in for
# the code, in a folder of their own (setuptools would reuse their build/ for the real code).
COPY pyproject.toml README.md /deps/
RUN mkdir -p /deps/feeds/store /deps/server \
    && touch /deps/feeds/__init__.py /deps/feeds/store/__init__.py /deps/server/__init__.py
# The CA bundle secret is for builds behind a TLS-intercepting proxy; it is never stored in the image.
RUN --mount=type=secret,id=hostca,target=/run/secrets/hostca \
    python3 -m venv /opt/topicfeed \
    && if [ -f /run/secrets/hostca ]; then export PIP_CERT=/run/secrets/hostca; fi \
    && /opt/topicfeed/bin/pip install --no-cache-dir --disable-pip-version-check '/deps[postgres]'
COPY pyproject.toml README.md /src/
COPY feeds /src/feeds
COPY server /src/server
RUN --mount=type=secret,id=hostca,target=/run/secrets/hostca \
    if [ -f /run/secrets/hostca ]; then export PIP_CERT=/run/secrets/hostca; fi \
    && /opt/topicfeed/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps --force-reinstall /src

FROM ${BASE}
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/topicfeed --shell /usr/sbin/nologin topicfeed \
    && mkdir -p /var/lib/topicfeed/instance /srv/content \
    && chown topicfeed:topicfeed /var/lib/topicfeed /var/lib/topicfeed/instance \
    && chmod 0700 /var/lib/topicfeed/instance
COPY --from=build /opt/topicfeed /opt/topicfeed
COPY deploy/container-entrypoint.sh /usr/local/bin/topicfeed-entrypoint
ENV PATH=/opt/topicfeed/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TOPICFEED_INSTANCE=/var/lib/topicfeed/instance \
    TOPICFEED_CONTENT_DIRS=/srv/content
VOLUME ["/var/lib/topicfeed/instance", "/srv/content"]
USER 10001:10001
WORKDIR /var/lib/topicfeed
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["topicfeed-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
