"""Machines sharing one *Generate all*: what tests/test_scale_out.py and bench/scaleout_bench.py
both start, watch and check (no pytest fixtures here, so the benchmark can use it too)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import sqlalchemy as sa
from redis import Redis
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from webapp.extensions import db
from webapp.models import ErrorKind, Render, RenderState
from webapp.services import storage
from webapp.services.storage import render_keys, video_file
from webapp.storage import PARTIAL, Store

from .helpers import Processes, decode, local_files, wait_for


class Cluster:
    """Named machines (`Processes.machine`), each running `flask cron` and render workers,
    with the RQ worker names that tell which machine ran an RQ job.

    With `store` (the app's object store, STORAGE_URL=s3://…) the machines share no folder:
    each has its own LESSONS_ROOT and VIDEOS_ROOT too, and the media is in the store only."""

    def __init__(self, processes: Processes, redis_url: str, names=("a", "b"), store: Store | None = None):
        self.redis = Redis.from_url(redis_url)
        self.store = store
        self.machines = {name: processes.machine(name, shared_disk=store is None) for name in names}
        self.worker_machine: dict[str, str] = {}

    def start(self, render_workers: int = 1, **env) -> None:
        """Per machine, as the Procfile: `render_workers` workers of the render queue, one of
        the maintenance queue and cron (with one render worker: one worker serving both queues)."""
        pids = {}
        for name, machine in self.machines.items():
            if render_workers == 1:
                pids[machine.worker(wait=False, **env).pid] = name
            else:
                for _ in range(render_workers):
                    pids[machine.worker("renders", wait=False, **env).pid] = name
                machine.worker("maintenance", "webhooks", "webhooks-slow", wait=False, **env)
            machine.cron(**env)
        wait_for(
            lambda: len({w.pid for w in Worker.all(connection=self.redis)} & set(pids)) == len(pids),
            60,
            "every render worker to start",
        )
        for worker in Worker.all(connection=self.redis):
            if worker.pid in pids:
                self.worker_machine[worker.name] = pids[worker.pid]

    def machine_of(self, render: Render) -> str | None:
        """The machine whose worker ran (or runs) this attempt's RQ job."""
        try:
            job = Job.fetch(render.rq_job_id, connection=self.redis)
        except NoSuchJobError:
            return None
        return self.worker_machine.get(job.worker_name)

    def kill(self, name: str) -> None:
        """SIGKILL every process of the machine (workers, work horses, encoders, cron)."""
        self.machines[name].stop_all()


def renders(app) -> list[Render]:
    """Every Render row, oldest first, detached from the session."""
    with app.app_context():
        rows = db.session.scalars(sa.select(Render).order_by(Render.queued_at)).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


def busy_half_way(app, cluster: Cluster, victim: str, done_at_least: int):
    """The renders `victim` is running once it has completed `done_at_least` (else False)."""
    rows = renders(app)
    done = [r for r in rows if r.state == RenderState.COMPLETED and cluster.machine_of(r) == victim]
    running = [r for r in rows if r.state == RenderState.RENDERING and cluster.machine_of(r) == victim]
    return len(done) >= done_at_least and bool(running) and running


def check_outcome(app, cluster: Cluster, status: dict, lesson_paths: list[str], killed: set) -> dict:
    """Assert what a user would check after the run; return what each machine rendered.

    - the summary (the status JSON) is exact: completed, every lesson counted once, the lost
      attempts listed as failed;
    - each render the killed machine was running failed as worker_lost, and its attempt 2
      completed on another machine; every other render ran once and completed;
    - each lesson's video is in VIDEOS_ROOT once and whole (decoded with PyAV: frames, size,
      duration), with its sidecars, and nothing else (no temporary file);
    - with a store: the same of the store's ``videos/`` keys (temporaries aside: see
      `sweep_leftovers`), and no machine, nor the web, wrote a file under its own LESSONS_ROOT or
      VIDEOS_ROOT.
    """
    rows = renders(app)
    assert status["videoGenerationStatus"] == "completed", status
    assert status["totalLessons"] == status["completedLessons"] == len(lesson_paths), status
    assert status["activeRenders"] == [], status
    finished = status["generatedVideos"]
    assert sorted(v["lessonPath"] for v in finished if v["success"]) == sorted(lesson_paths)
    assert len(finished) == len(rows) == len(lesson_paths) + len(killed)

    by_id = {r.id: r for r in rows}
    killed_machines = {cluster.machine_of(by_id[render_id]) for render_id in killed}
    for render_id in killed:
        lost = by_id[render_id]
        assert lost.state == RenderState.FAILED and lost.error_kind == ErrorKind.WORKER_LOST, (
            lost.error_message
        )
        [again] = [r for r in rows if r.lesson_id == lost.lesson_id and r.id != lost.id]
        assert again.attempt == 2 and again.state == RenderState.COMPLETED
        assert cluster.machine_of(again) not in killed_machines
    assert [r for r in rows if r.id not in killed and r.state != RenderState.COMPLETED] == []
    completed = [r for r in rows if r.state == RenderState.COMPLETED]
    assert len(completed) == len({r.lesson_id for r in completed}) == len(lesson_paths)

    if cluster.store is None:
        check_videos_on_disk(Path(app.config["VIDEOS_ROOT"]), completed)
    else:
        check_videos_in_store(cluster.store, completed)
        written = {name: m.local_files() for name, m in cluster.machines.items()}
        written["web"] = local_files(app.config)
        assert written == {name: [] for name in written}, f"media written locally: {written}"

    per_machine: dict[str, int] = {}
    for render in completed:
        name = cluster.machine_of(render) or "?"
        per_machine[name] = per_machine.get(name, 0) + 1
    return per_machine


def check_video(path: Path, render: Render) -> None:
    info = decode(path)
    assert info["frames"] == render.frames_total, (render.output_path, info)
    assert abs(info["duration"] - render.duration) < 0.1, (render.output_path, info)


def check_videos_on_disk(videos_root: Path, completed: list[Render]) -> None:
    """Each video whole in VIDEOS_ROOT, with its sidecars, and nothing else."""
    expected = set()
    for render in completed:
        check_video(video_file(videos_root, render.output_path), render)
        expected.update(video_file(videos_root, key) for key in render_keys(render))
    found = {Path(folder) / name for folder, _, names in os.walk(videos_root) for name in names}
    assert found == expected, f"stray files in VIDEOS_ROOT: {sorted(found - expected)}"


def check_videos_in_store(store: Store, completed: list[Render]) -> None:
    """The store's ``videos/`` keys are each video and its sidecars, once, and nothing else (but
    temporaries); each video, downloaded, decodes whole."""
    found = [info.key for info in store.list("videos/") if not info.key.startswith(f"videos/{PARTIAL}/")]
    expected = [key for render in completed for key in render_keys(render)]
    assert sorted(found) == sorted(expected), f"videos/ keys: {sorted(set(found) ^ set(expected))}"
    with tempfile.TemporaryDirectory() as folder:
        for render in completed:
            copy = Path(folder) / render.output_path.replace("/", "_")
            store.download(render.output_path, copy)
            check_video(copy, render)
            copy.unlink()


def store_leftovers(store: Store) -> list[str]:
    """Unfinished uploads in the store: temporary keys, and multipart uploads never completed
    (of any key under the store's prefix)."""
    keys = [info.key for info in store.temporaries()]
    client, prefix = store.client, store.prefix
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=store.bucket, Prefix=prefix):
        keys += [f"multipart upload of {u['Key'][len(prefix) :]}" for u in page.get("Uploads", [])]
    return keys


def sweep_leftovers(app, store: Store) -> list[str]:
    """Run the product's sweep of unfinished uploads (what `tasks.sweep_uploads` runs hourly)
    with no age limit, once the run is over and nothing can be uploading; assert it leaves none.
    Returns what there was to sweep."""
    before = store_leftovers(store)
    with app.app_context():
        storage.sweep_temporaries(older_than=0)
    assert store_leftovers(store) == [], "unfinished uploads left after the sweep"
    return before
