"""topicfeed's HTTP service: ``create_app`` builds the Flask app around one store.

Importing this package loads neither Flask nor the store: ``topicfeed import`` (``server.cli``)
needs only the store, and each module it does not load is memory the import does not hold
(Flask, Werkzeug and the views were about 20 MB of the CLI's 60). ``create_app`` loads them.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .instance import default_instance, init_instance, require_instance
from .settings import load_settings

if TYPE_CHECKING:
    from flask import Flask

    from feeds.store import Store

__all__ = ["create_app", "get_store"]


def __getattr__(name: str) -> Any:
    """``server.get_store`` without loading Flask when ``server`` is imported (PEP 562)."""
    if name == "get_store":
        from .context import get_store

        return get_store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def index_url(config: Mapping[str, Any], instance: Path) -> str:
    """The configured SQLAlchemy URL, else the SQLite file ``topicfeed.db`` in ``instance``."""
    return config["DATABASE_URL"] or f"sqlite:///{Path(instance) / 'topicfeed.db'}"


def database_url(app: Flask) -> str:
    """The configured SQLAlchemy URL, else the SQLite file in the instance folder."""
    return index_url(app.config, Path(app.instance_path))


def create_app(test_config: dict[str, Any] | None = None, instance: Path | None = None, *,
               init: bool = True) -> Flask:
    """App factory: settings from defaults, config.toml, environment, then ``test_config``.

    With ``init=False`` (every CLI command but ``init``) a missing instance is a
    ``FileNotFoundError`` instead of being created with a fresh master key."""
    from flask import Flask

    from . import context, edge, errors, fastpath, front, roles
    from .instance import KeyRing

    instance = (instance or default_instance()).resolve()
    if init:
        init_instance(instance)
    else:
        require_instance(instance)
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True)
    app.config.update(load_settings(instance, test_config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = True  # type: ignore[attr-defined]
    store, keyring = open_store(app.config, instance), KeyRing(instance)
    if roles.is_reader(app.config):
        roles.check_signing_key(store, keyring.keys(), str(instance))
    else:  # one writer per database: a second one stops here (WriterBusy), before it writes anything
        roles.claim_writer(app, store, instance)
        if app.config["ROLE"] == "writer":
            roles.publish_signing_key(store, keyring.keys())
    context.init_app(app, store, keyring)

    from . import api, feeds_routes, home, metrics, websub_hub

    app.register_blueprint(home.bp)
    app.register_blueprint(feeds_routes.bp)
    app.register_blueprint(websub_hub.bp)
    app.register_blueprint(api.bp)
    errors.init_app(app)
    roles.init_app(app)
    fastpath.install(app)
    edge.init_app(app)
    metrics.init_app(app)
    # one WSGI layer in front of Flask: ProxyFix, the fast path's replays, /metrics counts and
    # (from `serve`) the access log, so a cached answer costs one Python call, not four
    front.install(app)
    return app


def open_store(config: Mapping[str, Any], instance: Path) -> Store:
    """The index of ``instance`` with ``config`` (its settings), migrated at start unless
    ``auto_upgrade`` is off or this process is a reader (only the writer migrates: a reader of a
    newer topicfeed waits for the writer's upgrade). Raises ``SchemaError`` when the index
    needs a migration this process may not run, ``ImportError`` for a missing database driver."""
    from feeds.store import SchemaError, Store

    from .roles import is_reader

    reader = is_reader(config)
    try:
        return Store(index_url(config, instance), auto_upgrade=config["AUTO_UPGRADE"] and not reader,
                     pool_size=config["DB_POOL_SIZE"])
    except SchemaError as exc:
        if not reader or "topicfeed upgrade" not in str(exc):
            raise
        raise SchemaError(f"{exc} on the writer ({config['WRITER_URL']}) first: readers never migrate") from None
