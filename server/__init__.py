"""topicfeed's HTTP service: ``create_app`` builds the Flask app around one store."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from feeds.store import SchemaError, Store

from . import context, edge, errors, fastpath, front, roles
from .context import get_store
from .instance import KeyRing, default_instance, init_instance, require_instance
from .settings import load_settings

__all__ = ["create_app", "get_store"]


def database_url(app: Flask) -> str:
    """The configured SQLAlchemy URL, else the SQLite file in the instance folder."""
    return app.config["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path) / 'topicfeed.db'}"


def create_app(test_config: dict[str, Any] | None = None, instance: Path | None = None, *,
               init: bool = True) -> Flask:
    """App factory: settings from defaults, config.toml, environment, then ``test_config``.

    With ``init=False`` (every CLI command but ``init``) a missing instance is a
    ``FileNotFoundError`` instead of being created with a fresh master key."""
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
    context.init_app(app, _open_store(app), KeyRing(instance))

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


def _open_store(app: Flask) -> Store:
    """The index, migrated at start unless ``auto_upgrade`` is off or this process is a reader
    (only the writer migrates: a reader of a newer topicfeed waits for the writer's upgrade)."""
    reader = roles.is_reader(app.config)
    try:
        return Store(database_url(app), auto_upgrade=app.config["AUTO_UPGRADE"] and not reader,
                     pool_size=app.config["DB_POOL_SIZE"])
    except SchemaError as exc:
        if not reader or "topicfeed upgrade" not in str(exc):
            raise
        raise SchemaError(f"{exc} on the writer ({app.config['WRITER_URL']}) first: readers never migrate") from None
