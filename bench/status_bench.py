#!/usr/bin/env python3
"""Status polling against the framework's ceiling: the JSON status, the htmx fragment, a
conditional poll (If-None-Match -> 304) and a bare Flask endpoint, under gunicorn as `make run`
starts it, on SQLite + embedded Redis and on PostgreSQL + the Redis server, in one run.

    .venv/bin/python bench/status_bench.py [--connections 16,64,200] [--seconds 10] [--only sqlite]

Each database gets a fresh instance: a job of 25 lessons and 200 renders (2 of them rendering),
polled by a staff member's bearer token with wrk (2 threads, keep-alive). The bare endpoint is a
Flask app answering a small JSON under the same gunicorn settings (bench/bare_app.py). Prints
requests/s, median and p99 per endpoint and connection count, and each ratio to the bare
endpoint; `--json FILE` also writes the numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from stream_bench import BIN, ROOT, flask, free_port, poll  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "lvt_status_bench"
REDIS_SERVER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
TARGETS = {"json": 0.50, "304": 0.70, "fragment": 0.35}  # of the bare endpoint's requests/s


def _wait_for(port: int) -> None:
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server on port {port} did not answer")


def gunicorn(app: str, env: dict, port: int, log: Path) -> subprocess.Popen:
    """gunicorn with the project's own settings (gunicorn.conf.py), access log off as in the issue."""
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null", app],
        cwd=ROOT,
        env={**env, "HOST": "127.0.0.1", "PORT": str(port), "PATH": f"{BIN}:{env['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    _wait_for(port)
    return proc


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def fresh_postgres() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"


def seed(env: dict) -> tuple[str, str]:
    """A staff member, their token, and a job of 25 lessons and 200 renders (2 rendering), written
    through the app's models so the status document is published as in production."""
    os.environ.update({k: v for k, v in env.items() if k in ("INSTANCE_PATH", "DATABASE_URL", "REDIS_URL")})
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Lesson, Render, RenderState, VideoJob, utcnow
    from webapp.services import accounts, jobs, summary, tokens

    app = create_app()
    with app.app_context():
        user = accounts.save_user("staff@example.com", "bench-password-1", None, ["Bench course"])
        _, token = tokens.create_api_token(user, "bench")
        course = jobs.find_course("Bench course")
        job = VideoJob(course=course, video_id=uuid.uuid4().hex[:11], title="Bench job")
        db.session.add(job)
        db.session.flush()
        start = utcnow() - timedelta(hours=1)
        lessons = []
        for n in range(1, 26):
            lesson = Lesson(
                job=job, path=f"{job.video_id}/lesson_{n}", number=n, title=f"Lesson {n}", duration=60.0
            )
            db.session.add(lesson)
            lessons.append(lesson)
        db.session.flush()
        for i in range(200):
            lesson = lessons[i % 25]
            rendering = i >= 198
            db.session.add(
                Render(
                    job_id=job.id,
                    lesson_id=lesson.id,
                    state=RenderState.RENDERING if rendering else RenderState.COMPLETED,
                    output_file_name=f"v{i}.mp4",
                    output_path=f"videos/{lesson.path}/v{i}.mp4",
                    attempt=1,
                    frames_done=900 if rendering else 1800,
                    frames_total=1800,
                    requested_by_id=user.id,
                    queued_at=start + timedelta(seconds=i),
                    started_at=start + timedelta(seconds=i),
                    finished_at=None if rendering else start + timedelta(seconds=i + 30),
                    heartbeat_at=utcnow(),
                )
            )
        db.session.flush()
        summary.refresh(job)
        db.session.commit()
        job_id = str(job.id)
        db.engine.dispose()
    return job_id, token


def etag_of(port: int, path: str, token: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    return response.getheader("ETag")


def measure(name: str, env: dict, args, bare_port: int) -> list[dict]:
    instance = Path(env["INSTANCE_PATH"])
    flask(env, "db", "upgrade")
    if not env.get("REDIS_URL"):
        flask(env, "redis", "start")
    job_id, token = seed(env)
    port = free_port()
    web = gunicorn("wsgi:app", env, port, instance / "web.log")
    rows = []
    try:
        status = f"/video-transform/{job_id}/video-generation-status"
        faces = {
            "bare": (bare_port, "/bare", {}),
            "json": (port, status, {}),
            "304": (port, status, {"If-None-Match": etag_of(port, status, token)}),
            "fragment": (port, status, {"HX-Request": "true"}),
        }
        for connections in args.connections:
            for face, (face_port, path, headers) in faces.items():
                poll(face_port, path, token, 2, connections, headers)  # warm up
                result = poll(face_port, path, token, args.seconds, connections, headers)
                rows.append({"database": name, "connections": connections, "face": face, **result})
                print(
                    f"{name:8}{connections:5} {face:9}{result['rps']:9.0f}{result['median_ms']:9.1f}"
                    f"{result['p99_ms']:9.1f}{result['errors']:7d}",
                    flush=True,
                )
    finally:
        stop(web)
        if not env.get("REDIS_URL"):
            flask(env, "redis", "stop")
    return rows


def report(rows: list[dict]) -> None:
    print("\nratios to the bare endpoint (requests/s; p99 at 16 connections):")
    for database in dict.fromkeys(r["database"] for r in rows):
        for connections in dict.fromkeys(r["connections"] for r in rows):
            cell = {
                r["face"]: r for r in rows if r["database"] == database and r["connections"] == connections
            }
            bare = cell["bare"]
            parts = []
            for face, target in TARGETS.items():
                ratio = cell[face]["rps"] / bare["rps"]
                parts.append(f"{face} {ratio:.0%} ({'ok' if ratio >= target else 'below'} {target:.0%})")
            if connections == 16:
                p99 = cell["json"]["p99_ms"] / bare["p99_ms"]
                parts.append(f"json p99 {p99:.1f}x bare ({'ok' if p99 <= 3 else 'above'} 3x)")
            print(f"  {database:8}{connections:5}  " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=lambda v: [int(x) for x in v.split(",")], default=[16, 64, 200])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base = Path(tempfile.mkdtemp(prefix="status-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH")}
    bare_port = free_port()
    (base / "bare").mkdir()
    bare = gunicorn("bench.bare_app:app", env, bare_port, base / "bare" / "web.log")
    print(f"{'database':8}{'conn':>5} {'endpoint':9}{'req/s':>9}{'median':>9}{'p99 ms':>9}{'errors':>7}")
    rows = []
    try:
        if args.only in (None, "sqlite"):
            (base / "sqlite").mkdir()
            rows += measure("sqlite", {**env, "INSTANCE_PATH": str(base / "sqlite")}, args, bare_port)
        if args.only in (None, "postgres"):
            (base / "postgres").mkdir()
            import redis

            redis.Redis.from_url(REDIS_SERVER).flushdb()
            pg = {**env, "INSTANCE_PATH": str(base / "postgres"), "DATABASE_URL": fresh_postgres(),
                  "REDIS_URL": REDIS_SERVER}  # fmt: skip
            rows += measure("postgres", pg, args, bare_port)
    finally:
        stop(bare)
    report(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
