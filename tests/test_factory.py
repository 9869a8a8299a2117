"""The app factory and its defaults on a fresh machine."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from webapp import create_app, queue
from webapp.config import ConfigError, database_uri
from webapp.extensions import db

from .helpers import ROOT


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
    # So is the database, with its password and token hashes (it was made 0644), and WAL's files.
    with app.app_context():
        db.session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        db.session.commit()
        for name in ("app.db", "app.db-wal", "app.db-shm"):
            assert (instance / name).stat().st_mode & 0o077 == 0, name
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


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "SESSION_COOKIE_SECURE",
            "True1",
            "SESSION_COOKIE_SECURE must be true or false (1/0, yes/no, on/off), got 'True1'",
        ),
        ("COURSE_RENDER_CONCURRENCY", "0", "COURSE_RENDER_CONCURRENCY must be at least 1, got 0"),
        ("LOST_RENDER_SECONDS", "-5", "LOST_RENDER_SECONDS must be at least 1, got -5"),
        ("RENDER_CRF", "60", "RENDER_CRF must be from 0 to 51, got 60"),
        ("RENDER_PROCESSES", "two", "RENDER_PROCESSES must be a whole number, got 'two'"),
        (
            "RENDER_RETRY_INTERVALS",
            "10,-30",
            "RENDER_RETRY_INTERVALS must be seconds (whole numbers) separated by commas, got '10,-30'",
        ),
    ],
)
def test_a_setting_out_of_its_range_stops_the_start(tmp_path, monkeypatch, name, value, message):
    """A typo in a yes/no setting was a silent "no" (SESSION_COOKIE_SECURE=True1: cookies sent
    over plain HTTP), and COURSE_RENDER_CONCURRENCY=0 started fine, then every Generate was a 500
    that left a queued render behind. Each now stops the start, naming the setting."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    assert str(refused.value) == message


@pytest.mark.parametrize(
    "value, secure", [("on", True), ("Yes", True), ("1", True), ("off", False), ("false", False)]
)
def test_yes_and_no_settings_take_the_usual_words(tmp_path, monkeypatch, value, secure):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", value)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    assert app.config["SESSION_COOKIE_SECURE"] is secure


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


def test_every_setting_the_readme_names_is_read_from_the_environment():
    """README's Configuration table is what operators set: each variable there is read (the web
    server's by gunicorn.conf.py, the instance folder by create_app). PROXY_FIX_X_FOR was named
    there and never read: behind the proxy every client was 127.0.0.1."""
    from webapp import config

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    named = {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    read_by_config = {
        *config._ENV_STRINGS,
        *config._ENV_INTS,
        *config._ENV_BOOLS,
        *config._ENV_INT_LISTS,
    }
    elsewhere = {name: "gunicorn.conf.py" for name in ("WEB_WORKER_CLASS", "WEB_CONNECTIONS", "LOG_LEVEL")}
    elsewhere["INSTANCE_PATH"] = "webapp/app.py"
    assert len(named) > 30 and "PROXY_FIX_X_FOR" in named
    for name in named - read_by_config:
        assert name in elsewhere, f"README names {name}, which nothing reads from the environment"
        assert f'"{name}"' in (ROOT / elsewhere[name]).read_text(), name


def test_behind_the_proxy_the_clients_address_counts(tmp_path, monkeypatch, config, factory):
    """PROXY_FIX_X_FOR=1 (the README's advice behind a TLS proxy on the same machine): /metrics
    is not open to the Internet, and one attacker's wrong passwords do not lock the account
    for everyone else."""
    from .helpers import PASSWORD

    monkeypatch.setenv("PROXY_FIX_X_FOR", "1")
    deployed = create_app(dict(config))  # as wsgi.py: what the environment sets applies
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    stranger = deployed.test_client()
    metrics = stranger.get("/metrics", headers={"X-Forwarded-For": "203.0.113.66"}, environ_base=proxy)
    assert metrics.status_code == 401  # a token is needed from there
    local = stranger.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, environ_base=proxy)
    assert local.status_code == 200

    victim = factory.user("victim@example.com")
    for _ in range(6):
        wrong = stranger.post(
            "/auth/token",
            json={"email": victim.email, "password": "guess"},
            headers={"X-Forwarded-For": "198.51.100.7"},
            environ_base=proxy,
        )
    assert wrong.status_code == 429  # the attacker's address is throttled ...
    right = deployed.test_client().post(
        "/auth/token",
        json={"email": victim.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.10"},
        environ_base=proxy,
    )
    assert right.status_code == 200  # ... not the victim's
