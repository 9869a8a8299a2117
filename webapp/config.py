"""Settings read from the environment, with overrides for tests.

Every setting has a default that serves on a fresh machine: SQLite, an embedded
Redis and storage folders all live under the instance folder.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from .storage import local_roots


class ConfigError(ValueError):
    """A setting from the environment that cannot work; the message names it (and never shows
    a password)."""


# Settings taken from the environment as they are (strings) when present.
_ENV_STRINGS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "LESSONS_ROOT",
    "VIDEOS_ROOT",
    "STORAGE_URL",
    "RENDER_CACHE_DIR",
    "LOGIN_RATE_LIMIT",
    "WEBHOOK_SEND_LIMIT",
    "RENDER_PRESET",
    "RENDER_TUNE",
    "PASSWORD_HASH_METHOD",
    "METRICS_ALLOW",
)
# Whole-number settings and their smallest (and largest) sensible values; 1 unless named.
_ENV_INTS = {
    "COURSE_RENDER_CONCURRENCY": (1, None),
    "RENDER_PROCESSES": (1, None),
    "RENDER_CRF": (0, 51),
    "RENDER_CACHE_MAX_BYTES": (0, None),
    "STORAGE_READ_TIMEOUT": (1, None),
    "AUTH_TOKEN_TTL": (1, None),
    "LOST_RENDER_SECONDS": (1, None),
    "RENDER_HEARTBEAT_SECONDS": (1, None),
    "REAP_INTERVAL_SECONDS": (1, None),
    "RENDER_MAX_ATTEMPTS": (1, None),
    "REMEMBER_COOKIE_DAYS": (1, None),
    "LESSON_MAX_SECONDS": (1, None),
    "USER_MAX_ACTIVE_RENDERS": (1, None),
    "LESSON_MAX_OUTPUT_NAMES": (1, None),
    "WEBHOOK_TIMEOUT": (1, None),
    "EVENTS_HEARTBEAT_SECONDS": (1, None),
    "EVENTS_MAX_SECONDS": (1, None),
    "EVENTS_RECHECK_SECONDS": (1, None),
    "EVENTS_MAX_PER_USER": (1, None),
    "UPLOAD_MAX_BYTES": (1, None),
    "UPLOAD_MAX_FILES": (1, None),
    "UPLOAD_MAX_UNCOMPRESSED_BYTES": (1, None),
    "UPLOAD_MAX_RATIO": (1, None),
    "UPLOAD_MAX_CONCURRENT": (1, None),
    "UPLOAD_DISK_RESERVE_BYTES": (0, None),
    "PROXY_FIX_X_FOR": (0, None),
}
_ENV_BOOLS = ("SESSION_COOKIE_SECURE", "WEBHOOK_ALLOW_PRIVATE")
_ENV_INT_LISTS = ("RENDER_RETRY_INTERVALS", "WEBHOOK_RETRY_INTERVALS")


def defaults(instance_path: Path) -> dict:
    """The built-in settings, before the environment and explicit overrides."""
    return {
        "DATABASE_URL": f"sqlite:///{instance_path / 'app.db'}",
        "REDIS_URL": "",  # empty: start the embedded Redis under the instance folder
        "LESSONS_ROOT": str(instance_path / "lessons"),
        "VIDEOS_ROOT": str(instance_path / "videos"),
        # Where media is kept: unset → the two folders above; file:///path → path/lessons and
        # path/videos; s3://bucket/prefix → S3-compatible object storage (ARCHITECTURE.md, "Storage").
        "STORAGE_URL": "",
        # Seconds an object store may keep silent before a request to it is retried (botocore's
        # standard retries, AWS_MAX_ATTEMPTS) and then given up as unavailable.
        "STORAGE_READ_TIMEOUT": 60,
        "RENDER_CACHE_DIR": str(instance_path / "render-cache"),
        "RENDER_CACHE_MAX_BYTES": 2 * 1024**3,
        "RENDER_PROCESSES": 2,
        "RENDER_PRESET": "veryfast",
        "RENDER_CRF": 23,
        "RENDER_TUNE": "stillimage",
        # At most this many renders of one course are queued or running at once,
        # so one course's "Generate all" cannot starve another course.
        "COURSE_RENDER_CONCURRENCY": 2,
        # A render whose worker has not reported for this long is declared lost.
        "LOST_RENDER_SECONDS": 30,
        # A rendering worker says it is alive this often; `flask cron` runs the reaper this often.
        "RENDER_HEARTBEAT_SECONDS": 5,
        "REAP_INTERVAL_SECONDS": 10,
        "RENDER_MAX_ATTEMPTS": 3,
        # Seconds before the 1st, 2nd, … automatic retry of a render that failed for a passing reason.
        "RENDER_RETRY_INTERVALS": [10, 30, 90],
        "AUTH_TOKEN_TTL": 3600,
        # werkzeug's method string; scrypt's default cost (n=2^15) takes ~0.1 s per check here.
        "PASSWORD_HASH_METHOD": "scrypt",
        # Addresses (or networks) that may read /metrics without a token; admins' tokens always may.
        "METRICS_ALLOW": "127.0.0.1,::1",
        # Webhooks: seconds before each retry of a failed delivery, the time allowed per attempt,
        # and whether endpoints may be on loopback, link-local or private addresses (tests only).
        "WEBHOOK_RETRY_INTERVALS": [5, 30, 120, 600, 3600],
        "WEBHOOK_TIMEOUT": 10,
        "WEBHOOK_ALLOW_PRIVATE": False,
        # Tests and redeliveries a course may ask for (its endpoints together).
        "WEBHOOK_SEND_LIMIT": "10 per minute; 100 per hour",
        # Server-sent events: a comment line this often keeps proxies from closing an idle
        # stream; a stream ends after EVENTS_MAX_SECONDS and the browser reconnects (resuming).
        "EVENTS_HEARTBEAT_SECONDS": 15,
        "EVENTS_MAX_SECONDS": 600,
        # An open stream checks this often that its asker may still see the job (token, user,
        # membership, the job's course), and ends when not.
        "EVENTS_RECHECK_SECONDS": 5,
        # Streams one user may hold open at once (each holds one of the web server's connections).
        "EVENTS_MAX_PER_USER": 10,
        "LOGIN_RATE_LIMIT": "5 per minute; 30 per hour",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # "Keep me logged in" lasts this long; the server refuses older logins too.
        "REMEMBER_COOKIE_DAYS": 14,
        # Limits that keep one user or one lesson from flooding the queue and the disk.
        "LESSON_MAX_SECONDS": 4 * 3600,
        "USER_MAX_ACTIVE_RENDERS": 20,
        "LESSON_MAX_OUTPUT_NAMES": 5,
        # Request bodies: JSON calls and small forms only, except lesson packages (uploads):
        # at most this many bytes compressed, entries, bytes unpacked, and unpacked/packed.
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "UPLOAD_MAX_BYTES": 2 * 1024**3,
        "UPLOAD_MAX_FILES": 2000,
        "UPLOAD_MAX_UNCOMPRESSED_BYTES": 8 * 1024**3,
        "UPLOAD_MAX_RATIO": 100,
        # Uploads one user may have in flight at once, and the disk space an upload must leave
        # free beside the lessons (where packages are spooled and unpacked).
        "UPLOAD_MAX_CONCURRENT": 2,
        "UPLOAD_DISK_RESERVE_BYTES": 1024**3,
        "SQLALCHEMY_RECORD_QUERIES": False,
        "WTF_CSRF_TIME_LIMIT": None,  # tokens live as long as the session
        "JOBS_PER_PAGE": 20,
    }


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _as_bool(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word not in _TRUE | _FALSE:  # a typo ("True1") would otherwise be a silent False
        raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), got {value!r}")
    return word in _TRUE


def _as_int(name: str, value: str) -> int:
    low, high = _ENV_INTS[name]
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from exc
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bounds}, got {number}")
    return number


def from_environment(environ: dict | None = None) -> dict:
    """The settings the environment sets, converted to their types."""
    env = os.environ if environ is None else environ
    found: dict = {}
    for name in _ENV_STRINGS:
        if env.get(name):
            found[name] = env[name]
    for name in _ENV_INTS:
        if env.get(name):
            found[name] = _as_int(name, env[name])
    for name in _ENV_BOOLS:
        if env.get(name):
            found[name] = _as_bool(name, env[name])
    for name in _ENV_INT_LISTS:
        if env.get(name):
            parts = [part.strip() for part in env[name].split(",") if part.strip()]
            if not all(part.isascii() and part.isdigit() for part in parts):
                raise ConfigError(
                    f"{name} must be seconds (whole numbers) separated by commas, got {env[name]!r}"
                )
            found[name] = [int(part) for part in parts]
    return found


def database_uri(url: str) -> str:
    """SQLAlchemy URI for DATABASE_URL; bare postgres URLs use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def instance_secret_key(instance_path: Path) -> str:
    """A secret key generated once into the instance folder and reused after."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        # O_EXCL: when two processes start at once, one writes and both read it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
    raise RuntimeError(f"{path} is empty; delete it or set SECRET_KEY")


def build(instance_path: Path, overrides: dict | None = None) -> dict:
    """All settings: defaults, then the environment, then explicit overrides."""
    settings = defaults(instance_path)
    settings.update(from_environment())
    settings.update(overrides or {})
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = instance_secret_key(instance_path)
    roots = local_roots(settings.get("STORAGE_URL"))
    if roots:  # file:///path names both folders
        settings["LESSONS_ROOT"], settings["VIDEOS_ROOT"] = (str(root) for root in roots)
    _check_urls(settings)
    settings["SQLALCHEMY_DATABASE_URI"] = database_uri(settings["DATABASE_URL"])
    # The remember-me cookie follows the session cookie's settings.
    settings["REMEMBER_COOKIE_SECURE"] = settings["SESSION_COOKIE_SECURE"]
    settings["REMEMBER_COOKIE_DURATION"] = timedelta(days=settings["REMEMBER_COOKIE_DAYS"])
    return settings


def _check_urls(settings: dict) -> None:
    """DATABASE_URL and REDIS_URL of a kind this app speaks (named by their scheme only)."""
    kinds = {
        "DATABASE_URL": ("postgres://", "postgresql://", "postgresql+psycopg://", "sqlite://"),
        "REDIS_URL": ("redis://", "rediss://", "unix://"),
    }
    for name, schemes in kinds.items():
        url = settings.get(name) or ""
        if url and not url.startswith(schemes):
            shown = url.split("://", 1)[0][:20] + "://…" if "://" in url else "no scheme"
            raise ConfigError(f"{name} must start with {' or '.join(schemes)} (it has {shown})")
