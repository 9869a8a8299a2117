#!/usr/bin/env python3
"""Render throughput: 8 lessons of 60 s 1080p30 rendered by 1, 2 and 4 worker processes, with
RENDER_PROCESSES 1 and 2 (encoder processes per render), on this machine.

    .venv/bin/python bench/throughput_bench.py [--lessons 8] [--workers 1,2,4] [--processes 1,2]

Each configuration gets an empty render cache, queues one render per lesson (Generate all, as
the app does it), then starts that many real RQ workers (`flask worker --burst --queue renders`,
as the Procfile starts them) and waits until they have emptied the queue. Reported: wall time,
lessons per minute, lessons per minute per core, and CPU utilisation (busy share of all cores,
from /proc/stat, over the run). SQLite and the embedded Redis, as `make run`; the course's
concurrency limit (COURSE_RENDER_CONCURRENCY) is raised to the lesson count so it does not cap
the workers. `--json FILE` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from stream_bench import BIN, ROOT, flask  # noqa: E402

SEGMENTS, SECONDS, WIDTH, HEIGHT, FPS = 6, 60.0, 1920, 1080, 30
# A render worker as the Procfile starts it, ending once the queue is empty.
BURST_WORKER = [str(BIN / "flask"), "--app", "wsgi", "worker", "--burst", "--queue", "renders"]
BURST_WORKER += ["--log-level", "WARNING"]


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def make_lessons(lessons_root: Path, video_id: str, count: int) -> None:
    """`count` lessons with nothing in common (titles and narration differ), so no render reuses
    another's cached pieces: each render is a cold render."""
    from webapp.render.sample import tone_frequency, write_sample_lesson, write_tone

    for n in range(1, count + 1):
        folder = lessons_root / video_id / f"lesson_{n}"
        write_sample_lesson(
            folder,
            segments=SEGMENTS,
            seconds=SECONDS / SEGMENTS,
            width=WIDTH,
            height=HEIGHT,
            fps=FPS,
            detail=True,
            title=f"Lesson {n} — บทที่ {n}",
        )
        manifest = json.loads((folder / "lesson.json").read_text(encoding="utf-8"))
        for i, segment in enumerate(manifest["segments"]):
            segment["title"] = f"{segment['title']} · {n}"
            write_tone(folder / segment["audio"], SECONDS / SEGMENTS, tone_frequency(i) + 7 * n)
        (folder / "lesson.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def queue_all(env: dict, video_id: str, label: str) -> int:
    """Create the job (first time) and queue a render of every lesson; the number queued."""
    os.environ.update(env)
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import accounts, jobs, renders

    app = create_app()
    with app.app_context():
        import sqlalchemy as sa

        job = db.session.scalars(sa.select(VideoJob).where(VideoJob.video_id == video_id)).one_or_none()
        if job is None:
            course = accounts.get_or_create_course("Throughput")
            job = jobs.create_job(None, course, video_id, "Throughput", Path(env["LESSONS_ROOT"]))
        for lesson in job.lessons:
            renders.generate(None, job, lesson.path, f"{label}.mp4")
        count = len(job.lessons)
        db.engine.dispose()
    return count


def completed(env: dict, label: str) -> int:
    """How many renders of this configuration completed; then the job goes (with its videos), so
    the next configuration starts from a new job (a lesson keeps at most 5 output names)."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Render, RenderState, VideoJob
    from webapp.services import jobs

    app = create_app()
    with app.app_context():
        import sqlalchemy as sa

        query = sa.select(sa.func.count()).where(
            Render.state == RenderState.COMPLETED, Render.output_file_name == f"{label}.mp4"
        )
        count = db.session.scalar(query)
        for job in db.session.scalars(sa.select(VideoJob)).all():
            jobs.delete_job(job, delete_videos=True)
        db.engine.dispose()
    return count


def run(env: dict, video_id: str, workers: int, processes: int) -> dict:
    label = f"w{workers}-p{processes}"
    cache = Path(env["INSTANCE_PATH"]) / f"cache-{label}"
    shutil.rmtree(cache, ignore_errors=True)
    queued = queue_all(env, video_id, label)
    worker_env = {**env, "RENDER_PROCESSES": str(processes), "RENDER_CACHE_DIR": str(cache)}
    busy0, total0 = busy_jiffies()
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            BURST_WORKER,
            cwd=ROOT,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(env["INSTANCE_PATH"]) / f"{label}-{i}.log", "w"),  # noqa: SIM115
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.wait()
    wall = time.monotonic() - started
    busy1, total1 = busy_jiffies()
    done = completed(env, label)
    cores = os.cpu_count() or 1
    result = {
        "workers": workers,
        "render_processes": processes,
        "lessons": queued,
        "completed": done,
        "wall_s": round(wall, 2),
        "lessons_per_min": round(done / wall * 60, 2),
        "lessons_per_min_per_core": round(done / wall * 60 / cores, 2),
        "cpu_utilisation": round((busy1 - busy0) / max(1, total1 - total0), 3),
    }
    print(
        f"{workers:7d}{processes:10d}{done:6d}/{queued:<3d}{wall:9.1f}{result['lessons_per_min']:9.2f}"
        f"{result['lessons_per_min_per_core']:10.2f}{result['cpu_utilisation']:8.0%}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda v: [int(x) for x in v.split(",")]  # noqa: E731
    parser.add_argument("--lessons", type=int, default=8)
    parser.add_argument("--workers", type=ints, default=[1, 2, 4])
    parser.add_argument("--processes", type=ints, default=[1, 2])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="10 s lessons at 640x360: checks the script")
    args = parser.parse_args()
    if args.quick:
        global SECONDS, WIDTH, HEIGHT
        SECONDS, WIDTH, HEIGHT = 10.0, 640, 360
    instance = Path(tempfile.mkdtemp(prefix="lvt-throughput-"))
    env = {
        **os.environ,
        "INSTANCE_PATH": str(instance),
        "LESSONS_ROOT": str(instance / "lessons"),
        "COURSE_RENDER_CONCURRENCY": str(args.lessons),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    flask(env, "db", "upgrade")
    flask(env, "redis", "start")
    video_id = "throughput1"
    try:
        make_lessons(instance / "lessons", video_id, args.lessons)
        print(f"{args.lessons} lessons of {SECONDS:.0f} s {WIDTH}x{HEIGHT}@{FPS}, {os.cpu_count()} cores")
        print("workers processes  done     wall s  lessons/min  per core   CPU")
        rows = [run(env, video_id, w, p) for p in args.processes for w in args.workers]
    finally:
        flask(env, "redis", "stop")
    best = max(rows, key=lambda r: r["lessons_per_min_per_core"])
    print(
        f"\nmost lessons per minute per core: {best['workers']} worker(s) x RENDER_PROCESSES="
        f"{best['render_processes']} ({best['lessons_per_min_per_core']} per core)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
