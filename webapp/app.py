"""The app factory's wiring: settings, extensions, blueprints, error handlers, commands."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as settings
from . import headers, telemetry
from .extensions import csrf, db, htmx, migrate
from .views import bodies

ROOT = Path(__file__).resolve().parent.parent


def build_app(config: dict | None = None) -> Flask:
    config = dict(config or {})
    instance_path = config.pop("INSTANCE_PATH", None) or os.environ.get("INSTANCE_PATH") or ROOT / "instance"
    app = Flask(
        "webapp",
        root_path=str(ROOT / "webapp"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(Path(instance_path).resolve()),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(settings.build(Path(app.instance_path), config))
    app.json.sort_keys = False  # keep the API's documented key order
    app.session_interface = SessionInterface()
    if app.config.get("PROXY_FIX_X_FOR"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"]), x_proto=1)

    telemetry.init_app(app)  # first: every request gets its id, even one refused early
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    headers.init_app(app)
    return app


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the signer made once per secret key, not on every
    request (a poll's session is read on each request, mostly to find none)."""

    def get_signing_serializer(self, app: Flask):
        kept = app.extensions.get("lvt_session_signer")
        if kept is None or kept[0] != (app.secret_key, app.config.get("SECRET_KEY_FALLBACKS")):
            signer = super().get_signing_serializer(app)
            kept = app.extensions["lvt_session_signer"] = (
                (app.secret_key, app.config.get("SECRET_KEY_FALLBACKS")),
                signer,
            )
        return kept[1]


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # Several processes (web, workers) share the SQLite file: WAL lets readers
    # go on while one writes, and foreign keys are off in SQLite unless asked.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        _owner_only_if_new(cursor)
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # SQLite's lower() folds A-Z only; PostgreSQL's folds every letter. One rule for both (no
        # index is built on lower(), so nothing stored depends on the built-in one).
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _owner_only_if_new(cursor) -> None:
    """A database file SQLite has just made (empty) readable by its owner only, as the secret
    key is: it holds password and token hashes. Before WAL mode, whose files take its mode."""
    for _seq, name, path in cursor.execute("PRAGMA database_list").fetchall():
        if name == "main" and path and os.path.getsize(path) == 0:
            os.chmod(path, 0o600)


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def register_extensions(app: Flask) -> None:
    from . import auth
    from .services import (
        events,  # noqa: F401 - its commit hooks publish status documents
        storage,
    )

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    engine_options = (
        {"connect_args": {"timeout": 30}} if uri.startswith("sqlite") else {"pool_pre_ping": True}
    )
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    htmx.init_app(app)
    bodies.init_app(app)  # after htmx (it sets the request class), before the CSRF check reads forms

    # CSRF is checked in auth.check_csrf: every browser post, but not bearer-token calls.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)

    auth.init_app(app)
    storage.init_app(app)


def register_blueprints(app: Flask) -> None:
    from .views import admin, api, auth, filters, lesson_files, ops, pages, stream, webhooks
    from .views.params import ID_MAX, IdConverter, refuse_nul_characters
    from .views.rest import Api

    app.url_map.converters["id"] = IdConverter
    app.before_request(refuse_nul_characters)
    filters.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(pages.fonts)
    app.register_blueprint(lesson_files.bp)
    rest_api = Api(app)
    rest_api.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": ID_MAX})
    rest_api.register_blueprint(api.bp)
    rest_api.register_blueprint(webhooks.api_bp)
    rest_api.register_blueprint(stream.bp)
    app.register_blueprint(webhooks.pages_bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin.invites)
    ops.init_app(app, rest_api)


def register_errorhandlers(app: Flask) -> None:
    from .views import errors

    errors.init_app(app)


def register_commands(app: Flask) -> None:
    from . import cli

    cli.init_app(app)

    @app.shell_context_processor
    def shell_context():
        from . import models

        return {"db": db, "models": models, "request": request}
