#!/usr/bin/env python3
"""Status polling with and without 500 open event streams, against gunicorn as `make run` starts it.

    .venv/bin/python bench/stream_bench.py [--streams 500] [--pollers 16] [--seconds 10]

Starts the product in a temporary instance folder (SQLite, embedded Redis, gunicorn with the
settings of gunicorn.conf.py), creates the demo data, then measures the JSON status endpoint
with N concurrent pollers (keep-alive connections, one request after another): first alone,
then while S event streams are open on the same job. Prints requests/s, median and p99
latency for both runs, and checks that every stream got its first event and is still open.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask(env: dict, *args: str) -> str:
    out = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number = re.match(r"[\d.]+", text).group(0)
    return float(number) * _UNITS[text[len(number) :]]


def poll(port: int, path: str, token: str, seconds: float, pollers: int, headers: dict | None = None) -> dict:
    """`pollers` keep-alive connections requesting `path` for `seconds`: wrk when installed (a C
    client leaves the CPU to the server), else Python threads."""
    headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    wrk = shutil.which("wrk")
    if wrk:
        extra = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{pollers}",
                f"-d{seconds:.0f}s",
                "--latency",
                *extra,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        socket_errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
        )
        return {
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "errors": (int(errors.group(1)) if errors else 0)
            + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "median_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
            "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        }
    return _poll_threads(port, path, headers, seconds, pollers)


def _poll_threads(port: int, path: str, headers: dict, seconds: float, pollers: int) -> dict:
    """`pollers` threads, each one keep-alive connection, requesting `path` for `seconds`."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run():
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status in (200, 304)
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                with lock:
                    errors += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "median_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


async def open_streams(
    port: int, path: str, token: str, count: int, ready: asyncio.Event, done: asyncio.Event
):
    """Open `count` event streams; count those that got their first event and stayed open."""
    first_events = 0
    alive = 0

    async def one():
        nonlocal first_events, alive
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        while (line := await reader.readline()) and not line.startswith(b"event: status"):
            pass
        first_events += 1
        await done.wait()
        alive += not reader.at_eof()
        writer.close()

    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(0.002)  # connect at a steady pace, as browsers would
    deadline = time.monotonic() + 120
    while first_events < count:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"only {first_events} of {count} streams got their first event in 120 s: "
                "the server cannot hold that many streams open (a threaded worker holds a thread each)"
            )
        await asyncio.sleep(0.1)
    ready.set()
    await asyncio.gather(*tasks)
    return first_events, alive


def start_product(instance: Path, port: int) -> tuple[dict, dict, subprocess.Popen]:
    """Migrate, start embedded Redis, create the demo and start gunicorn as `make run` does.
    Returns (environment, demo login, web process) once the web answers."""
    env = {**os.environ, "INSTANCE_PATH": str(instance), "HOST": "127.0.0.1", "PORT": str(port)}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    flask(env, "db", "upgrade")
    flask(env, "redis", "start")
    demo = json.loads(flask(env, "demo").strip().splitlines()[-1])
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env={**env, "PATH": f"{BIN}:{env['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=open(instance / "web.log", "w"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
            break
        except OSError:
            time.sleep(0.1)
    return env, demo, web


def poll_while_streams_open(port: int, status: str, token: str, args) -> tuple[dict, int, int]:
    """Open the streams (in a thread of their own), poll once they all got their first event,
    then close them. Returns (poll result, streams that got a first event, streams still open)."""
    results: dict = {}

    async def streams():
        ready, done = asyncio.Event(), asyncio.Event()
        path = status.replace("video-generation-status", "events")
        task = asyncio.create_task(open_streams(port, path, token, args.streams, ready, done))
        await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception():  # e.g. the streams never all got their first event
            results["error"] = task.exception()
            results["ready"] = True
            return
        results["ready"] = True
        while not results.get("measured"):
            await asyncio.sleep(0.1)
        done.set()
        results["streams"] = await task

    thread = threading.Thread(target=asyncio.run, args=(streams(),))
    thread.start()
    while not results.get("ready"):
        time.sleep(0.1)
    if "error" in results:
        thread.join()
        raise results["error"]
    polled = poll(port, status, token, args.seconds, args.pollers)
    results["measured"] = True
    thread.join()
    return polled, *results["streams"]


def report(args, alone: dict, with_streams: dict, first: int, alive: int) -> None:
    client = "wrk" if shutil.which("wrk") else "Python threads"
    print(
        f"gunicorn {os.environ.get('WEB_WORKER_CLASS', 'gevent')}, "
        f"{os.environ.get('WEB_CONCURRENCY', '2')} workers; {args.pollers} pollers ({client}), "
        f"{args.seconds:.0f} s each run; JSON status of the demo job"
    )
    print(f"{'':28}{'req/s':>8}{'median ms':>11}{'p99 ms':>9}{'errors':>8}")
    for name, r in (("polling alone", alone), (f"with {args.streams} open streams", with_streams)):
        print(f"{name:28}{r['rps']:8.0f}{r['median_ms']:11.1f}{r['p99_ms']:9.1f}{r['errors']:8d}")
    print(f"p99 ratio (with streams / alone): {with_streams['p99_ms'] / alone['p99_ms']:.2f}")
    print(f"streams: {first} of {args.streams} got their first event; {alive} still open at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--pollers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    # A SIGTERM (e.g. from `timeout`) ends the run through the finally below, which stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    instance = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    port = free_port()
    env, demo, web = start_product(instance, port)
    try:
        status = f"/video-transform/{demo['jobId']}/video-generation-status"
        poll(port, status, demo["token"], 2, args.pollers)  # warm up
        alone = poll(port, status, demo["token"], args.seconds, args.pollers)
        with_streams, first, alive = poll_while_streams_open(port, status, demo["token"], args)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
        flask(env, "redis", "stop")
    report(args, alone, with_streams, first, alive)
    print(f"server log: {instance / 'web.log'}")


if __name__ == "__main__":
    main()
