"""topicfeed's HTTP service: ``create_app`` builds the Flask app around one store."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from feeds.store import Store

from . import httpcache
from .instance import KeyRing, default_instance, init_instance
from .settings import load_settings


def database_url(app: Flask) -> str:
    return app.config["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path) / 'topicfeed.db'}"


def create_app(test_config: dict[str, Any] | None = None, instance: Path | None = None) -> Flask:
    """App factory: settings from defaults, config.toml, environment, then ``test_config``."""
    instance = (instance or default_instance()).resolve()
    init_instance(instance)
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True)
    app.config.update(load_settings(instance, test_config))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = True  # type: ignore[attr-defined]
    store = Store(database_url(app), auto_upgrade=app.config["AUTO_UPGRADE"])
    app.extensions["topicfeed.store"] = store
    app.extensions["topicfeed.keys"] = KeyRing(instance)
    httpcache.init_app(app, store)

    from . import api, compat, curator, feeds_routes, index, problems

    app.register_blueprint(index.bp)
    app.register_blueprint(feeds_routes.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(compat.bp)
    app.register_blueprint(curator.bp)
    problems.init_app(app)
    return app


def get_store(app: Flask | None = None) -> Store:
    from flask import current_app

    return (app or current_app).extensions["topicfeed.store"]
