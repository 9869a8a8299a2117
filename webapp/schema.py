"""Whether the database's tables are the ones this code was written for: its Alembic revision
against the newest migration in migrations/. A worker refuses to start when they are not (a
database never upgraded, a worker pointed at the wrong one, code older than the database), and
/health answers 503 while the database is behind the code (a machine deployed before
`flask db upgrade`)."""

from __future__ import annotations

import functools
from typing import Literal

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from .extensions import db

State = Literal["current", "empty", "behind", "ahead"]


@functools.cache
def _script(directory: str) -> ScriptDirectory:
    return ScriptDirectory(directory)


def state() -> tuple[State, str | None]:
    """How the database stands against this code's migrations, and what to do when it is not
    current. Raises SQLAlchemyError when the database does not answer."""
    script = _script(current_app.extensions["migrate"].directory)
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == script.get_current_head():
        return "current", None
    where = db.engine.url.render_as_string(hide_password=True)
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
