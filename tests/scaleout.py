"""Machines sharing one *Generate all*: what tests/test_scale_out.py and bench/scaleout_bench.py
both start, watch and check (no pytest fixtures here, so the benchmark can use it too)."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from redis import Redis
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from webapp.extensions import db
from webapp.models import SIDECAR_KINDS, ErrorKind, Render, RenderState
from webapp.services.storage import video_file

from .helpers import Processes, decode, wait_for


class Cluster:
    """Named machines (`Processes.machine`), each running `flask cron` and render workers,
    with the RQ worker names that tell which machine ran an RQ job."""

    def __init__(self, processes: Processes, redis_url: str, names=("a", "b")):
        self.redis = Redis.from_url(redis_url)
        self.machines = {name: processes.machine(name) for name in names}
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
                machine.worker("maintenance", wait=False, **env)
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
      duration), with its sidecars, and nothing else (no temporary file).
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

    videos_root = Path(app.config["VIDEOS_ROOT"])
    expected = set()
    for render in completed:
        output = video_file(videos_root, render.output_path)
        info = decode(output)
        assert info["frames"] == render.frames_total, (render.output_path, info)
        assert abs(info["duration"] - render.duration) < 0.1, (render.output_path, info)
        expected.add(output)
        sidecars = [render.sidecar_path(kind) for kind in SIDECAR_KINDS]
        expected.update(video_file(videos_root, path) for path in sidecars if path)
    found = {Path(folder) / name for folder, _, names in os.walk(videos_root) for name in names}
    assert found == expected, f"stray files in VIDEOS_ROOT: {sorted(found - expected)}"

    per_machine: dict[str, int] = {}
    for render in completed:
        name = cluster.machine_of(render) or "?"
        per_machine[name] = per_machine.get(name, 0) + 1
    return per_machine
