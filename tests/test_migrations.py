"""Migrations: one head, a clean round trip, and no drift from the models."""

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from webapp import create_app
from webapp.extensions import db, migrate

from .helpers import base_config


@pytest.fixture
def fresh_app(tmp_path, server_database, redis_url):
    """An app on an empty database of its own (SQLite file, or a new PostgreSQL database)."""
    url = server_database("migrations") if server_database else f"sqlite:///{tmp_path / 'fresh.db'}"
    app = create_app(base_config(tmp_path, url, redis_url))
    yield app
    with app.app_context():
        db.engine.dispose()


def _columns(table: str) -> dict:
    return {c["name"]: c for c in sa.inspect(db.engine).get_columns(table)}


def test_single_head(app):
    with app.app_context():
        script = ScriptDirectory.from_config(migrate.get_config())
        assert len(script.get_heads()) == 1
        revisions = list(script.walk_revisions())
        assert len(revisions) >= 2


def test_upgrade_downgrade_upgrade_and_no_drift(fresh_app):
    with fresh_app.app_context():
        flask_migrate.upgrade()
        columns = _columns("video_jobs")
        assert columns["video_generation_status"]["nullable"] is False
        assert "not_started" in str(columns["video_generation_status"]["default"])
        assert columns["video_generation_data"]["nullable"] is True
        is_pg = db.engine.dialect.name == "postgresql"
        if is_pg:
            assert type(columns["video_generation_data"]["type"]).__name__ == "JSONB"
            enums = {e["name"]: e["labels"] for e in sa.inspect(db.engine).get_enums()}
            assert enums["video_generation_status"] == ["not_started", "generating", "completed", "failed"]

        # Back to the base schema: both columns (and on PostgreSQL the enum type) are gone.
        flask_migrate.downgrade(revision="0001_base_schema")
        columns = _columns("video_jobs")
        assert "video_generation_status" not in columns and "video_generation_data" not in columns
        if is_pg:
            assert "video_generation_status" not in {e["name"] for e in sa.inspect(db.engine).get_enums()}

        flask_migrate.downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()
        assert "video_generation_status" in _columns("video_jobs")
        # `flask db check`: the models and the migrations agree.
        flask_migrate.check()


def test_upgrade_says_each_migration_it_applies(fresh_app, capsys):
    """`flask db upgrade` printed nothing, applying nine migrations or none: an operator could
    not tell what it did."""
    with fresh_app.app_context():
        script = ScriptDirectory.from_config(migrate.get_config())
        names = [revision.revision for revision in reversed(list(script.walk_revisions()))]
        capsys.readouterr()
        flask_migrate.upgrade()
        said = [line for line in capsys.readouterr().err.splitlines() if "migration" in line]
        assert [line.split(":")[0] for line in said] == [f"applied migration {name}" for name in names]
        assert said[0] == f"applied migration {names[0]}: {script.get_revision(names[0]).doc}"
        flask_migrate.upgrade()
        assert "migration" not in capsys.readouterr().err  # nothing to do, nothing said
        flask_migrate.downgrade(revision=names[-2])
        assert capsys.readouterr().err.startswith(f"undid migration {names[-1]}: ")


def test_check_reports_drift(fresh_app):
    """The drift check is real: a schema the models do not describe fails it."""
    with fresh_app.app_context():
        flask_migrate.upgrade()
        with db.engine.begin() as conn:
            conn.execute(sa.text("CREATE INDEX ix_courses_drift ON courses (created_at)"))
        with pytest.raises(SystemExit):
            flask_migrate.check()
