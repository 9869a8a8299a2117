"""The app factory and its defaults on a fresh machine."""

import subprocess
import sys
from pathlib import Path

from webapp import create_app, queue
from webapp.config import database_uri


def test_config_overrides_apply(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x", "TESTING": True, "JOBS_PER_PAGE": 7})
    assert app.testing
    assert app.config["JOBS_PER_PAGE"] == 7
    assert app.instance_path == str(tmp_path.resolve())


def test_fresh_machine_defaults_live_under_instance(tmp_path, monkeypatch):
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "LESSONS_ROOT",
        "VIDEOS_ROOT",
        "SECRET_KEY",
        "RENDER_CACHE_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    instance = tmp_path.resolve()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'app.db'}"
    assert app.config["REDIS_URL"] == ""  # the embedded Redis is used
    assert queue.limits_storage_uri(app) == f"redis+unix://{instance / 'redis.sock'}"
    for name in ("LESSONS_ROOT", "VIDEOS_ROOT", "RENDER_CACHE_DIR"):
        assert Path(app.config[name]).is_relative_to(instance)
    # The secret key is generated once into the instance folder, then reused.
    key_file = instance / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert len(app.config["SECRET_KEY"]) >= 32
    assert create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"] == app.config["SECRET_KEY"]


def test_secret_key_is_not_a_constant_in_code(tmp_path):
    one = create_app({"INSTANCE_PATH": str(tmp_path / "a")}).config["SECRET_KEY"]
    two = create_app({"INSTANCE_PATH": str(tmp_path / "b")}).config["SECRET_KEY"]
    assert one != two


def test_environment_settings_are_read(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/lessons")
    monkeypatch.setenv("COURSE_RENDER_CONCURRENCY", "3")
    monkeypatch.setenv("LESSONS_ROOT", str(tmp_path / "shared" / "lessons"))
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/lessons"
    assert app.config["COURSE_RENDER_CONCURRENCY"] == 3
    assert app.config["LESSONS_ROOT"] == str(tmp_path / "shared" / "lessons")


def test_database_uri_uses_psycopg_for_bare_postgres_urls():
    assert database_uri("postgres://a@b/c") == "postgresql+psycopg://a@b/c"
    assert database_uri("sqlite:////x.db") == "sqlite:////x.db"


def test_session_cookie_is_httponly_and_samesite_lax(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_importing_the_renderer_does_not_import_flask():
    code = (
        "import sys, webapp.render; "
        "print('flask' in sys.modules, 'sqlalchemy' in sys.modules, 'rq' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
