#!/usr/bin/env python3
"""Memory over time: a gunicorn worker's RSS over 100,000 status polls, and a render worker's
over 20 renders, with the processes `make run` starts (SQLite + embedded Redis).

    .venv/bin/python bench/memory_bench.py [--requests 120000] [--renders 20] [--only web|render]

Web: gunicorn with gunicorn.conf.py (access log off, as in bench/status_bench.py) on a fresh
instance holding status_bench's job (25 lessons, 200 renders, 2 of them rendering, whose
progress this script moves twice a second so the status version changes as in production).
wrk (16 connections) polls the status with a bearer token in rounds of `--round-seconds`,
each round the JSON or, whenever fragments are below a sixth of the requests so far, the htmx
fragment (HX-Request: true; the template path), until wrk counted `--requests` answers in all
(default 120,000: about 100,000 JSON and 20,000 fragments, interleaved from the start). After
each round it reads VmRSS and VmHWM of every gunicorn worker from /proc/<pid>/status.

Render: one `flask --app wsgi worker --queue renders` (the Procfile's render worker). The
script queues a render of a short real lesson (the demo's showcase lesson: a moving image, clips,
every transition, captions, music and loudness; 5 segments of 2 s, 1280x720, 30 fps, which is
enough work for the renderer to start its encoder processes) through the app's services, waits
until it is done, and does it again, `--renders` times, each one cold (the segment cache emptied
before it). While a render runs it samples, every 50 ms, the worker's process tree: RQ's work
horse (forked per job) and the encoder processes the renderer starts. After each render it reads
the worker's own VmRSS and VmHWM, and its RQ scheduler's (a child process of its own).

Prints a table per part and the growth against a tolerance (`--tolerance`, MB); `--json FILE`
also writes every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from status_bench import gunicorn, seed, stop  # noqa: E402
from stream_bench import BIN, ROOT, flask, free_port, poll  # noqa: E402

CONNECTIONS = 16
FRAGMENT_SHARE = 1 / 6  # of the requests: 100,000 JSON and 20,000 fragments in the default run
MARKS = (10_000, 50_000, 100_000)  # requests at which the web table shows each worker's RSS
RENDER_MARKS = (1, 2, 5, 10, 20)
# The demo's showcase lesson (every lesson.json key: a moving image, clips, transitions,
# captions, music, loudness) at 720p, 5 segments of 2 s: enough work for encoder processes.
LESSON = {"seconds": 2.0, "width": 1280, "height": 720, "fps": 30}
LESSON_SECONDS = 10


def memory(pid: int) -> dict | None:
    """VmRSS and VmHWM (peak RSS) of a process in MB, from /proc; None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key[2:].lower()] = int(value.split()[0]) / 1024
    return found if len(found) == 2 else None


def mb(value: float) -> str:
    return f"{value:7.1f}"


# --- web ------------------------------------------------------------------------------------


class ProgressTicker(threading.Thread):
    """Moves the seeded job's two rendering renders forward twice a second (as a renderer's
    progress reports do), so every poll round sees new status versions."""

    def __init__(self, job_id: str):
        super().__init__(daemon=True)
        self.job_id = uuid.UUID(job_id)
        self.halt = threading.Event()
        self.ticks = 0

    def run(self) -> None:
        import sqlalchemy as sa

        from webapp import create_app
        from webapp.extensions import db
        from webapp.models import Render, RenderState
        from webapp.services import progress

        app = create_app()
        with app.app_context():
            rendering = db.session.scalars(
                sa.select(Render.id).where(
                    Render.job_id == self.job_id, Render.state == RenderState.RENDERING
                )
            ).all()
            while not self.halt.wait(0.5):
                self.ticks += 1
                for render_id in rendering:
                    progress.record_progress(render_id, 900 + (15 * self.ticks) % 900, 1800, 30.0)
            db.engine.dispose()


def web_part(env: dict, args) -> dict:
    instance = Path(env["INSTANCE_PATH"])
    job_id, token = seed(env)
    port = free_port()
    web = gunicorn("wsgi:app", env, port, instance / "web.log")
    ticker = ProgressTicker(job_id)
    ticker.start()
    samples = []
    try:
        workers = sorted(child.pid for child in psutil.Process(web.pid).children())
        status = f"/video-transform/{job_id}/video-generation-status"
        total = {"json": 0, "fragment": 0}
        errors = 0
        samples.append({"requests": 0, "workers": {pid: memory(pid) for pid in workers}})
        round_number = 0
        while sum(total.values()) < args.requests:
            round_number += 1
            face = "fragment" if total["fragment"] < FRAGMENT_SHARE * sum(total.values()) else "json"
            headers = {"HX-Request": "true"} if face == "fragment" else {}
            result = poll(port, status, token, args.round_seconds, CONNECTIONS, headers)
            total[face] += result["requests"]
            errors += result["errors"]
            now = sorted(child.pid for child in psutil.Process(web.pid).children())
            if now != workers:
                raise SystemExit(f"gunicorn's workers changed during the run: {workers} -> {now}")
            sample = {
                "requests": sum(total.values()),
                "face": face,
                "rps": result["rps"],
                "workers": {pid: memory(pid) for pid in workers},
            }
            samples.append(sample)
            print(
                f"  round {round_number:3} {face:8} {result['rps']:5.0f} req/s, total{sample['requests']:7d} "
                + "  ".join(
                    f"pid {pid}: rss {m['rss']:.1f} hwm {m['hwm']:.1f}"
                    for pid, m in sample["workers"].items()
                ),
                flush=True,
            )
    finally:
        ticker.halt.set()
        ticker.join(timeout=5)
        stop(web)
    return {"workers": workers, "samples": samples, "total": total, "errors": errors,
            "status_versions_moved": ticker.ticks}  # fmt: skip


def first_at(samples: list[dict], requests: int) -> dict:
    """The first sample taken once `requests` had been answered (the last one if never)."""
    return next((s for s in samples if s["requests"] >= requests), samples[-1])


def web_report(web: dict, tolerance: float) -> bool:
    samples, total = web["samples"], web["total"]
    print(
        f"\nweb: {sum(total.values()):,} status requests ({total['json']:,} JSON, {total['fragment']:,} "
        f"htmx fragment), {web['errors']} errors, {CONNECTIONS} connections, {len(samples) - 1} rounds; "
        f"the status version moved {web['status_versions_moved']} times"
    )
    marks = [first_at(samples, m) for m in MARKS if m < samples[-1]["requests"]] + [samples[-1]]
    print(f"{'worker':>8}" + "".join(f"{'RSS @ ' + format(s['requests'], ','):>16}" for s in marks)
          + f"{'peak (HWM)':>12}{'growth':>9}")  # fmt: skip
    ok = True
    for pid in web["workers"]:
        end = samples[-1]["workers"][pid]
        growth = end["rss"] - marks[0]["workers"][pid]["rss"]
        ok &= growth <= tolerance
        print(
            f"{pid:>8}"
            + "".join(f"{s['workers'][pid]['rss']:13.1f} MB" for s in marks)
            + f"{end['hwm']:9.1f} MB{growth:+6.1f} MB"
        )
    print(
        f"growth: RSS at the end minus RSS at {marks[0]['requests']:,} requests "
        f"({'ok' if ok else 'ABOVE'}: tolerance +{tolerance:g} MB)"
    )
    return ok


# --- render ---------------------------------------------------------------------------------


def render_setup(app) -> tuple:
    """A job holding one short real lesson; returns (job id, lesson path)."""
    from webapp.render.sample import write_showcase_lesson
    from webapp.services import courses, jobs

    lessons_root = Path(app.config["LESSONS_ROOT"])
    video_id = "memoryBench"
    write_showcase_lesson(lessons_root / video_id / "lesson_1", **LESSON)
    course = jobs.find_course("Memory bench") or courses.create_course(None, "Memory bench")
    job = jobs.create_job(None, course, video_id, "Memory bench", lessons_root)
    return job.id, job.lessons[0].path


class TreeSampler(threading.Thread):
    """Samples the render worker's children (not those it had when idle) every 50 ms: RQ's
    work horse (a direct child) and what the horse starts (encoder processes)."""

    def __init__(self, worker: psutil.Process, idle: set[int]):
        super().__init__(daemon=True)
        self.worker, self.idle = worker, idle
        self.halt = threading.Event()
        self.peaks: dict[int, dict] = {}  # pid -> {"role", "hwm", "rss"}
        self.tree_rss = 0.0  # the most the horse and its children held at one time

    def run(self) -> None:
        while not self.halt.wait(0.05):
            together = 0.0
            for child in self._children():
                found = memory(child.pid)
                if found is None:
                    continue
                role = "horse" if self._ppid(child) == self.worker.pid else "encoder"
                peak = self.peaks.setdefault(child.pid, {"role": role, "hwm": 0.0, "rss": 0.0})
                peak["hwm"] = max(peak["hwm"], found["hwm"])
                peak["rss"] = max(peak["rss"], found["rss"])
                together += found["rss"]
            self.tree_rss = max(self.tree_rss, together)

    def _children(self) -> list[psutil.Process]:
        try:
            return [c for c in self.worker.children(recursive=True) if c.pid not in self.idle]
        except psutil.Error:
            return []

    @staticmethod
    def _ppid(process: psutil.Process) -> int | None:
        try:
            return process.ppid()
        except psutil.Error:
            return None

    def leftovers(self) -> list[psutil.Process]:
        return self._children()


def render_once(app, job_id, lesson_path: str, worker: psutil.Process, idle: set[int]) -> dict:
    from webapp.extensions import db
    from webapp.models import Render, VideoJob
    from webapp.services import renders

    shutil.rmtree(Path(app.config["RENDER_CACHE_DIR"]) / "v1", ignore_errors=True)  # a cold render
    sampler = TreeSampler(worker, idle)
    sampler.start()
    started = time.monotonic()
    with app.app_context():
        render_id = renders.generate(None, db.session.get(VideoJob, job_id), lesson_path).id
        while True:
            db.session.expire_all()
            render = db.session.get(Render, render_id)
            if not render.state.active:
                break
            if time.monotonic() - started > 900:
                raise SystemExit("a render took more than 15 minutes")
            time.sleep(0.1)
        state, error = str(render.state), render.error_message
    seconds = time.monotonic() - started
    deadline = time.monotonic() + 30
    while sampler.leftovers() and time.monotonic() < deadline:  # the horse reports, then exits
        time.sleep(0.05)
    sampler.halt.set()
    sampler.join()
    if state != "completed":
        raise SystemExit(f"render {render_id} ended {state}: {error}")
    horses = [p for p in sampler.peaks.values() if p["role"] == "horse"]
    encoders = [p for p in sampler.peaks.values() if p["role"] == "encoder"]
    return {
        "seconds": seconds,
        "worker": memory(worker.pid),
        "idle_children": {pid: memory(pid) for pid in idle},
        "horse_hwm": max((p["hwm"] for p in horses), default=0.0),
        "encoder_hwm": max((p["hwm"] for p in encoders), default=0.0),
        "encoders": len(encoders),
        "tree_rss": sampler.tree_rss,
    }


def render_part(env: dict, args) -> dict:
    from webapp import create_app, queue

    instance = Path(env["INSTANCE_PATH"])
    app = create_app()
    with app.app_context():
        job_id, lesson_path = render_setup(app)
    log = open(instance / "worker.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(BIN / "flask"), "--app", "wsgi", "worker", "--queue", "renders"],  # as in the Procfile
        cwd=ROOT,
        env={**env, "PATH": f"{BIN}:{env['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    rows = []
    try:
        with app.app_context():
            for _ in range(300):
                if queue.workers_alive() and proc.poll() is None:
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"the render worker did not start; see {instance / 'worker.log'}")
        time.sleep(3)  # its scheduler process starts beside it
        worker = psutil.Process(proc.pid)
        idle = {child.pid for child in worker.children(recursive=True)}
        print(f"render worker pid {proc.pid}, idle children {sorted(idle)}: {memory(proc.pid)}")
        for number in range(1, args.renders + 1):
            row = render_once(app, job_id, lesson_path, worker, idle)
            rows.append(row)
            print(
                f"  render {number:2} {row['seconds']:5.1f} s  worker rss {row['worker']['rss']:.1f} "
                f"hwm {row['worker']['hwm']:.1f}  horse peak {row['horse_hwm']:.1f}  "
                f"encoders ({row['encoders']}) peak {row['encoder_hwm']:.1f}  tree {row['tree_rss']:.1f} MB",
                flush=True,
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    return {"worker": proc.pid, "idle_children": sorted(idle), "renders": rows}


def render_report(part: dict, tolerance: float) -> bool:
    rows = part["renders"]
    marks = [n for n in RENDER_MARKS if n <= len(rows)]
    if len(rows) not in marks:
        marks.append(len(rows))
    median = statistics.median(r["seconds"] for r in rows)
    print(
        f"\nrender worker: {len(rows)} cold renders of a {LESSON_SECONDS} s "
        f"{LESSON['height']}p{LESSON['fps']} showcase lesson (median {median:.1f} s)"
    )
    print(f"{'after render':>14}" + "".join(f"{n:>9}" for n in marks))
    lines = {
        "worker RSS": lambda r: r["worker"]["rss"],
        "worker HWM": lambda r: r["worker"]["hwm"],
        "horse peak": lambda r: r["horse_hwm"],
        "encoder peak": lambda r: r["encoder_hwm"],
        "horse tree": lambda r: r["tree_rss"],
    }
    for pid in part["idle_children"]:
        lines["RQ scheduler"] = lambda r, pid=pid: (r["idle_children"][pid] or {"rss": 0.0})["rss"]
    ok = True
    for name, value in lines.items():
        print(f"{name:>14}" + "".join(f"{value(rows[n - 1]):9.1f}" for n in marks) + "  MB")
    base = rows[1] if len(rows) > 1 else rows[0]
    for name in ("worker RSS", "horse peak", "horse tree"):
        growth = lines[name](rows[-1]) - lines[name](base)
        ok &= name != "worker RSS" or growth <= tolerance
        print(f"growth of {name}, render {rows.index(base) + 1} -> {len(rows)}: {growth:+.1f} MB")
    print(f"worker RSS growth {'ok' if ok else 'ABOVE'}: tolerance +{tolerance:g} MB")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120_000)
    parser.add_argument("--round-seconds", type=int, default=2)
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=2.0, help="MB of growth still counted as none")
    parser.add_argument("--only", choices=["web", "render"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    instance = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH")}
    env["INSTANCE_PATH"] = str(instance)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["INSTANCE_PATH"] = str(instance)
    flask(env, "db", "upgrade")
    flask(env, "redis", "start")
    print(f"instance {instance}; load average {os.getloadavg()[0]:.1f}", flush=True)
    results, ok = {}, True
    try:
        if args.only in (None, "web"):
            results["web"] = web_part(env, args)
        if args.only in (None, "render"):
            results["render"] = render_part(env, args)
    finally:
        flask(env, "redis", "stop")
    if "web" in results:
        ok &= web_report(results["web"], args.tolerance)
    if "render" in results:
        ok &= render_report(results["render"], args.tolerance)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
