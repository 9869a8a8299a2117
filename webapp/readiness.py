"""Whether this machine's processes can do their work with the settings they were given.

The database's tables must be the ones this code was written for: its Alembic revision against
the newest migration in migrations/. A worker (or `flask cron`) refuses to start when they are
not (a database never upgraded, a worker pointed at the wrong one or at its own empty SQLite
because DATABASE_URL was missing, code older than the database), when the database or Redis does
not answer, or when a render worker cannot write where it must; /health answers 503 while the
database is behind the code (a machine deployed before `flask db upgrade`). Settings left to
their one-machine defaults beside a shared database are warned about.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from redis.exceptions import RedisError

from . import queue
from .extensions import db

State = Literal["current", "empty", "behind", "ahead"]


@functools.cache
def _script(directory: str) -> ScriptDirectory:
    return ScriptDirectory(directory)


def schema_state() -> tuple[State, str | None]:
    """How the database stands against this code's migrations, and what to do when it is not
    current. Raises SQLAlchemyError when the database does not answer."""
    script = _script(current_app.extensions["migrate"].directory)
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == script.get_current_head():
        return "current", None
    where = _database()
    if current is None:
        return (
            "empty",
            f"the database ({where}) has no tables yet: run `flask db upgrade` (or set DATABASE_URL)",
        )
    try:
        script.get_revision(current)
    except Exception:  # alembic's errors for a revision it does not know
        return "ahead", f"the database ({where}) is newer than this code (at {current}): deploy the new code"
    return "behind", f"the database ({where}) needs `flask db upgrade` (it is at {current})"


def worker_refusal(renders: bool) -> str | None:
    """Why a worker (`renders`: one that renders) or the cron scheduler must not start, or None."""
    try:
        kind, problem = schema_state()
    except sa.exc.SQLAlchemyError as exc:
        return f"the database ({_database()}) does not answer: {_first_line(exc.orig or exc)}"
    if kind != "current":
        return problem
    try:
        queue.worker_connection().ping()
    except RedisError as exc:
        return f"Redis ({_without_password(queue.redis_url())}) does not answer: {_first_line(exc)}"
    if renders:
        from .services import storage

        folders = ["RENDER_CACHE_DIR"] + (["VIDEOS_ROOT"] if storage.is_local() else [])
        for name in folders:
            if not _writable(Path(current_app.config[name])):
                return f"{name} ({current_app.config[name]}) cannot be written here"
    return None


def warnings() -> list[str]:
    """Settings a worker on a machine of its own would get wrong beside a shared database
    (logged at its start; on SQLite, one machine's, the defaults are right)."""
    if db.engine.dialect.name == "sqlite":
        return []
    found = []
    if not current_app.config.get("REDIS_URL"):
        found.append(
            f"REDIS_URL is not set: this process uses the embedded Redis of {current_app.instance_path}, "
            "which no other machine sees"
        )
    if not os.environ.get("SECRET_KEY"):
        found.append(
            "SECRET_KEY is not set: this machine signs with its own key from its instance folder, "
            "which other machines do not share (sessions, tokens and set-password links)"
        )
    return found


def _database() -> str:
    return db.engine.url.render_as_string(hide_password=True)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)
