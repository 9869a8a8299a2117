"""Plain helpers for tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

PASSWORD = "correct horse battery"
TEST_SECRET = "test-secret-key-not-for-production"
ROOT = Path(__file__).resolve().parent.parent
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    match = CSRF_INPUT.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def base_config(tmp_path: Path, database_url: str, redis_url: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LESSONS_ROOT": str(tmp_path / "lessons"),
        "VIDEOS_ROOT": str(tmp_path / "videos"),
        "RENDER_CACHE_DIR": str(tmp_path / "cache"),
        # Still scrypt, at a cost that keeps hundreds of logins quick (the product's is 32x).
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
    }


def subprocess_env(config: dict, **overrides) -> dict:
    """The environment a `flask` subprocess needs to act on the same data as `app`."""
    env = {**os.environ, **{k: str(v) for k, v in config.items() if k != "TESTING"}}
    env.update({"RENDER_PROCESSES": "1", "PYTHONUNBUFFERED": "1"})
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def wait_for(predicate, timeout: float, what: str = "condition", interval: float = 0.2):
    """Poll until predicate() is truthy; return its value or fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# A JavaScript function's source: `() => …`, `x => …`, `async (…) => …` or `function …`.
_JS_FUNCTION = re.compile(r"\s*(async\s+)?(\(|[A-Za-z_$][\w$]*\s*=>|function\b)")


def wait_in_page(page, predicate: str, arg=None, timeout: float = 30, what: str = "the page"):
    """Wait until `predicate`, the source of a JavaScript function called with `arg` in the page,
    returns something truthy; return that value, or fail the test naming `what` after `timeout` s.

    A function, never a bare expression: Playwright evaluates a bare expression string with eval
    each time it polls, which our Content-Security-Policy (script-src 'self', no 'unsafe-eval')
    refuses with an EvalError; a function is handed to the page once and polled without eval.
    (Checked with Playwright 1.65: "() => x" polls under our policy, "x" fails once it polls.)
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if not _JS_FUNCTION.match(predicate):
        raise ValueError(f"wait_in_page needs a function (our CSP forbids eval): {predicate[:60]!r}")
    try:
        handle = page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=100)
    except PlaywrightTimeout:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
    return handle.json_value()


class Auth:
    """Log a test client in and out through the login form, as a person would."""

    def __init__(self, client):
        self.client = client

    def login(self, email: str, password: str = PASSWORD, **kwargs):
        token = csrf_token(self.client)
        return self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}, **kwargs
        )

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": csrf_token(self.client, "/jobs")})
