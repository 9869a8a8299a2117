"""Plain helpers for tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
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


class Processes:
    """`flask worker` and `flask cron` subprocesses, each in a process group of its own so a
    test can kill a worker with everything it started (work horse, scheduler), like a lost machine.

    `machine(name)` gives the processes of another "machine": the same database, Redis,
    LESSONS_ROOT and VIDEOS_ROOT, but its own instance folder, RENDER_CACHE_DIR, working
    directory and TMPDIR, all under `log_dir/name`. With `shared_disk=False` (media in an object
    store, STORAGE_URL) it shares no folder at all: its LESSONS_ROOT and VIDEOS_ROOT are its own
    too, under `log_dir/name`, and not made (`local_files` tells what it wrote there)."""

    def __init__(self, config: dict, log_dir: Path, cwd: Path = ROOT, env: dict | None = None):
        self.config = config
        self.log_dir = log_dir
        self.cwd = cwd
        self.env = env or {}
        self.procs: list[subprocess.Popen] = []
        self.machines: list[Processes] = []

    def machine(self, name: str, shared_disk: bool = True) -> Processes:
        home = self.log_dir / name
        for folder in ("instance", "cache", "tmp"):
            (home / folder).mkdir(parents=True, exist_ok=True)
        config = {**self.config, "INSTANCE_PATH": home / "instance", "RENDER_CACHE_DIR": home / "cache"}
        if not shared_disk:
            config |= {"LESSONS_ROOT": home / "lessons", "VIDEOS_ROOT": home / "videos"}
        # Run from its own folder: `wsgi` is found through PYTHONPATH, nothing through the cwd.
        env = {**self.env, "TMPDIR": home / "tmp", "PYTHONPATH": ROOT}
        machine = Processes(config, home, cwd=home, env=env)
        self.machines.append(machine)
        return machine

    def _start(self, name: str, args: list[str], **env) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}-{len(self.procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=self.cwd,
            env=subprocess_env(self.config, **{**self.env, **env}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_path = log.name
        self.procs.append(proc)
        return proc

    def worker(self, *queues: str, wait: bool = True, **env) -> subprocess.Popen:
        from redis import Redis
        from rq import Worker

        args = ["worker", *[arg for q in queues for arg in ("--queue", q)]]
        redis = Redis.from_url(self.config["REDIS_URL"])
        proc = self._start("worker", args, **env)
        if wait:
            wait_for(
                lambda: any(w.pid == proc.pid for w in Worker.all(connection=redis)),
                30,
                f"worker to start ({proc.log_path})",
            )
        return proc

    def cron(self, **env) -> subprocess.Popen:
        return self._start("cron", ["cron"], **env)

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the process and everything it started, as if its machine were gone.

        RQ's work horse puts itself in a process group of its own, so killing the
        worker's group would leave it running: kill the whole tree instead."""
        import psutil

        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        proc.wait(timeout=30)  # SIGKILL cannot be ignored; the orphans are reaped by init

    def stop_all(self) -> None:
        """SIGKILL every process of this machine (and of the machines made from it), together."""
        import psutil

        procs = self.every_process()
        tree = []
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                tree += [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        for proc in procs:
            proc.wait(timeout=30)

    def every_process(self) -> list[subprocess.Popen]:
        return self.procs + [proc for machine in self.machines for proc in machine.every_process()]

    def local_files(self) -> list[Path]:
        """The files under this machine's LESSONS_ROOT and VIDEOS_ROOT."""
        return local_files(self.config)


def local_files(config: dict) -> list[Path]:
    """The files under the LESSONS_ROOT and VIDEOS_ROOT of these settings."""
    roots = [Path(config["LESSONS_ROOT"]), Path(config["VIDEOS_ROOT"])]
    return sorted(path for root in roots if root.exists() for path in root.rglob("*") if path.is_file())


def media_in_bucket(config: dict, bucket: str, monkeypatch) -> dict:
    """The app's config with its media in the test bucket, under a prefix of the test's own. A
    paused SeaweedFS accepts connections and never answers: the app and its workers give up on
    it within seconds (one try of STORAGE_READ_TIMEOUT; a render's own retries remain)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return {**config, "STORAGE_URL": f"s3://{bucket}/t-{uuid.uuid4().hex[:10]}", "STORAGE_READ_TIMEOUT": 2}


def app_store(app):
    """The app's object store (an S3Store: the test runs its media in the bucket)."""
    from webapp.storage.s3 import S3Store

    found = app.extensions["store"]
    assert isinstance(found, S3Store)
    return found


def to_store(app, store, video_id: str) -> None:
    """Move the video's lesson folders (written by the factory under the app's LESSONS_ROOT) to
    the store, keys as paths: only the store has them afterwards."""
    root = Path(app.config["LESSONS_ROOT"])
    for path in sorted((root / video_id).rglob("*")):
        if path.is_file():
            store.upload(path, f"lessons/{path.relative_to(root).as_posix()}")
    shutil.rmtree(root / video_id)


def decode(path: Path) -> dict:
    """What PyAV finds in a video file: codecs, size, duration (s) and the frames it decodes."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        return {
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (video.codec_context.width, video.codec_context.height),
            "duration": float(container.duration) / av.time_base,
            "frames": sum(1 for _ in container.decode(video=0)),
        }


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


PAGE_FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def settle_layout(page) -> None:
    """Wait for the page's load event, then up to 2 s for it to stop scrolling sideways: a page
    still applying its styles may be wider for a moment. Callers check the layout afterwards."""
    page.wait_for_load_state("load")
    with contextlib.suppress(AssertionError):
        wait_in_page(page, "() => " + PAGE_FITS, timeout=2, what="the page to fit")


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
