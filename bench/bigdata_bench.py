#!/usr/bin/env python3
"""Big data: the jobs list and a job's status with 100,000 jobs, 300,000 lessons and 1,000,000
renders, on SQLite and on PostgreSQL, through the real Flask app.

    .venv/bin/python bench/bigdata_bench.py [--scale 0.01] [--only sqlite] [--requests 200] [--json FILE]

Each database is made fresh (SQLite: a file in a temporary folder; PostgreSQL: the database
bigdata_bench, or $BENCH_BIGDATA_DB, on 127.0.0.1:5432, dropped and created), migrated with
`flask db upgrade`, then filled in bulk with SQLAlchemy Core (executemany in batches of 10,000
rows): 4 courses (a staff member with a bearer token belongs to 3 of them, 90 % of the jobs),
jobs spread over two years with varied titles, 3 lessons each, and about 10 renders per job in
realistic states (15 % of the jobs never rendered, 0.3 % generating with one rendering or queued
attempts, about 1 in 10 with a failed lesson). Each job's stored summary
(video_generation_status / video_generation_data) is built by the same rules as
webapp.services.summary.compute, and checked against compute() for a sample of jobs. Two jobs
are added for the status: one with 3 renders and one with 300.

Then, through the Flask test client with the bearer token (as an integrator or the dashboard
would call it), each request is timed `--requests` times after a warm-up: the jobs list as HTML
(/jobs) and JSON (/api/jobs), first page, a search, a status filter and page 2,000; the status
JSON and the htmx fragment of the 3- and the 300-render job. Prints median and p99 (ms) and the
SQL statements each request runs (a before_cursor_execute listener), the time the data took to
generate and the database's size; `--json FILE` writes it all. `--keep` leaves the databases.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
from stream_bench import flask  # noqa: E402 - the benches' one way to run a flask command

BIN = Path(sys.executable).parent

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("BENCH_BIGDATA_DB", "bigdata_bench")
REDIS_SERVER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TARGET_MEDIAN_MS, TARGET_P99_MS = 30.0, 100.0
BATCH = 10_000
JOBS, LESSONS_PER_JOB = 100_000, 3
SEARCH_WORD = "Photosynthesis"  # one of TOPICS: about 1 title in 40
TOPICS = [
    "Algebra",
    "Geometry",
    "Calculus",
    "Statistics",
    "Probability",
    "Trigonometry",
    "Photosynthesis",
    "Genetics",
    "Evolution",
    "Ecology",
    "Chemistry",
    "Thermodynamics",
    "Optics",
    "Electricity",
    "Magnetism",
    "Astronomy",
    "Geology",
    "Climate",
    "History",
    "Economics",
    "Grammar",
    "Poetry",
    "Rhetoric",
    "Philosophy",
    "Ethics",
    "Logic",
    "Programming",
    "Databases",
    "Networks",
    "Security",
    "Robotics",
    "Anatomy",
    "Nutrition",
    "Music",
    "Painting",
    "Sculpture",
    "Architecture",
    "Linguistics",
    "Thai",
    "Japanese",
]
KINDS = ("Introduction to", "Advanced", "Workshop:", "Review of", "Lab:", "Basics of", "Exam prep:")
WORDS = ["week", "unit", "part", "chapter", "session", "module", "day", "lecture"]


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- generation ------------------------------------------------------------------------------


class Generator:
    """Rows for the four tables, built in memory job by job and written in batches."""

    def __init__(self, conn: sa.Connection, scale: float, user_id: int, course_ids: list[int]):
        from webapp.models import Lesson, Render, VideoJob

        self.conn, self.rng, self.user_id = conn, random.Random(12), user_id
        self.jobs_total = max(50, round(JOBS * scale))
        self.course_ids = course_ids
        self.tables = {"jobs": VideoJob.__table__, "lessons": Lesson.__table__, "renders": Render.__table__}
        self.rows = {name: [] for name in self.tables}
        self.counts = dict.fromkeys(self.tables, 0)
        self.next_lesson_id = 1
        self.video_ids: set[str] = set()
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.special: dict[str, str] = {}

    def flush(self, force: bool = False) -> None:
        if not force and all(len(rows) < BATCH for rows in self.rows.values()):
            return
        for name in ("jobs", "lessons", "renders"):  # parents first (foreign keys)
            rows = self.rows[name]
            # A render without sidecars leaves the column out: SQL NULL, as the app writes it.
            groups = [rows]
            if name == "renders":
                groups = [[r for r in rows if r["sidecars"]], [r for r in rows if not r["sidecars"]]]
                for row in groups[1]:
                    del row["sidecars"]
            for group in groups:
                if group:
                    self.conn.execute(sa.insert(self.tables[name]), group)
            self.counts[name] += len(rows)
            rows.clear()
        self.conn.commit()

    def video_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        while True:
            vid = "".join(self.rng.choice(alphabet) for _ in range(11))
            if vid not in self.video_ids:
                self.video_ids.add(vid)
                return vid

    def title(self, n: int) -> str:
        r = self.rng
        return f"{r.choice(KINDS)} {r.choice(TOPICS)}, {r.choice(WORDS)} {r.randint(1, 40)} (#{n})"

    def run(self) -> None:
        span = timedelta(days=730)
        start = self.now - span
        for n in range(self.jobs_total):
            created = start + span * (n / self.jobs_total) + timedelta(seconds=self.rng.randint(0, 600))
            self.job(n, created)
            if n % 1000 == 999:
                self.flush()
        # The status's two jobs: the newest, each with one attempt rendering and one queued.
        self.special["3"] = self.job(self.jobs_total, self.now - timedelta(minutes=5), lessons=3, renders=3)
        self.special["300"] = self.job(
            self.jobs_total + 1, self.now - timedelta(minutes=4), lessons=30, renders=300
        )
        self.flush(force=True)

    def job(self, n: int, created: datetime, lessons: int = LESSONS_PER_JOB, renders: int | None = None):
        r = self.rng
        job_id, video_id = uuid.uuid4(), self.video_id()
        # 90 % in the member's three courses, 10 % in a course they do not see.
        course_id = self.course_ids[3] if r.random() < 0.1 else r.choice(self.course_ids[:3])
        lesson_rows = []
        for number in range(1, lessons + 1):
            lesson_rows.append(
                {
                    "id": self.next_lesson_id,
                    "job_id": job_id,
                    "path": f"{video_id}/lesson_{number}",
                    "number": number,
                    "title": f"Lesson {number}: {r.choice(TOPICS)}",
                    "duration": round(r.uniform(30, 900), 1),
                    "problem": None,
                    "missing": False,
                }
            )
            self.next_lesson_id += 1
        special = renders is not None
        generating = special or r.random() < 0.003
        if renders is None:
            renders = 0 if r.random() < 0.15 else r.randint(4, 20)  # mean 12 when rendered
        render_rows = self.renders(job_id, lesson_rows, created, renders, generating, special)
        status, data = summarise(lesson_rows, render_rows)
        self.rows["jobs"].append(
            {
                "id": job_id,
                "course_id": course_id,
                "video_id": video_id,
                "title": self.title(n),
                "created_at": created,
                "updated_at": max([created] + [x["finished_at"] or x["queued_at"] for x in render_rows]),
                "video_generation_status": status,
                "video_generation_data": data,
            }
        )
        self.rows["lessons"] += lesson_rows
        self.rows["renders"] += render_rows
        return str(job_id)

    def renders(self, job_id, lessons: list[dict], created, count: int, generating: bool, special: bool):
        """`count` attempts spread over the lessons (one or two output names each), oldest first;
        the last attempts rendering or queued when the job is generating."""
        r, rows, moment = self.rng, [], created + timedelta(minutes=5)
        attempts: dict[tuple[int, str], int] = {}
        active = (2 if special else r.randint(1, 3)) if generating else 0
        for i in range(count):
            lesson = lessons[i % len(lessons)]
            name = "video.mp4" if (i // len(lessons)) % 3 else "video-720p.mp4"
            key = (lesson["id"], name)
            attempts[key] = attempts.get(key, 0) + 1
            last_of_lesson = i >= count - len(lessons)
            if i >= count - active:
                # Rendering for the special jobs and 1 generating job in 20 (the workers), else queued.
                rendering = i == count - active and (special or r.random() < 0.05)
                state = "rendering" if rendering else "queued"
            elif last_of_lesson:
                state = "completed" if r.random() < 0.96 else "failed"
            else:
                state = r.choices(("completed", "failed", "cancelled"), (85, 10, 5))[0]
            moment += timedelta(seconds=r.randint(30, 3600))
            frames = r.randint(900, 27_000)
            seconds = frames / r.uniform(40, 120)
            started = moment + timedelta(seconds=r.randint(1, 60)) if state != "queued" else None
            finished = started + timedelta(seconds=seconds) if state not in ("queued", "rendering") else None
            if state == "rendering":
                started = self.now - timedelta(seconds=30)
            if state == "queued":
                moment = self.now - timedelta(seconds=count - i)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "job_id": job_id,
                    "lesson_id": lesson["id"],
                    "state": state,
                    "rq_job_id": None,
                    "output_file_name": name,
                    "output_path": f"videos/{lesson['path']}/{name}",
                    "frames_done": frames if state == "completed" else (frames // 2 if started else 0),
                    "frames_total": frames,
                    "frames_per_second": None,
                    "error_kind": "render"
                    if state == "failed"
                    else ("cancelled" if state == "cancelled" else None),
                    "error_message": "The renderer stopped: out of memory" if state == "failed" else None,
                    "requested_by_id": self.user_id,
                    "attempt": attempts[key],
                    "queued_at": moment,
                    "started_at": started,
                    "finished_at": finished,
                    "heartbeat_at": finished or started,
                    "cancel_requested_at": finished if state == "cancelled" else None,
                    "duration": round(seconds, 1) if state == "completed" else None,
                    "size_bytes": frames * 900 if state == "completed" else None,
                    "sidecars": {
                        "poster": name.replace(".mp4", ".jpg"),
                        "captions": name.replace(".mp4", ".vtt"),
                    }
                    if state == "completed" and r.random() < 0.5
                    else None,
                }
            )
        return rows


def summarise(lessons: list[dict], renders: list[dict]) -> tuple[str, dict]:
    """webapp.services.summary.compute's rules over rows in memory (checked against it after)."""
    paths = {lesson["id"]: lesson["path"] for lesson in lessons}
    finished = [x for x in renders if x["state"] in ("completed", "failed")]
    latest: dict[int, dict] = {}
    for x in finished:
        current = latest.get(x["lesson_id"])
        if current is None or (x["finished_at"], x["attempt"]) >= (
            current["finished_at"],
            current["attempt"],
        ):
            latest[x["lesson_id"]] = x
    if any(x["state"] in ("queued", "rendering") for x in renders):
        status = "generating"
    elif any(x["state"] == "failed" for x in latest.values()):
        status = "failed"
    elif latest:
        status = "completed"
    else:
        status = "not_started"
    started = [x for x in renders if x["started_at"] is not None]
    current = max(started, key=lambda x: x["started_at"]) if started else None
    videos = []
    for x in sorted(finished, key=lambda x: (x["finished_at"], x["attempt"])):
        entry = {
            "lessonPath": paths[x["lesson_id"]],
            "outputPath": x["output_path"],
            "generatedAt": iso(x["finished_at"]),
            "success": x["state"] == "completed",
        }
        if x["state"] == "failed":
            entry["error"] = x["error_message"] or "failed"
        if x["state"] == "completed" and x["sidecars"]:
            folder = x["output_path"].rsplit("/", 1)[0]
            entry["captionsPath"] = f"{folder}/{x['sidecars']['captions']}"
            entry["posterPath"] = f"{folder}/{x['sidecars']['poster']}"
        videos.append(entry)
    data = {
        "currentLesson": paths[current["lesson_id"]] if current else None,
        "generatedVideos": videos,
        "totalLessons": len(lessons),
        "completedLessons": sum(1 for x in latest.values() if x["state"] == "completed"),
    }
    return status, data


def fresh_postgres() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"


def build(app, url: str, scale: float) -> dict:
    """The courses, the member and their token (through the app), then the bulk rows (Core)."""
    from webapp.config import database_uri
    from webapp.extensions import db
    from webapp.services import accounts, jobs, tokens

    names = [f"Bench course {n}" for n in range(1, 5)]
    with app.app_context():
        user = accounts.save_user("staff@example.com", "bench-password-1", None, names[:3])
        accounts.get_or_create_course(names[3])
        db.session.commit()
        _, token = tokens.create_api_token(user, "bench")
        course_ids = [jobs.find_course(name).id for name in names]
        user_id = user.id
        db.engine.dispose()
    engine = sa.create_engine(database_uri(url))
    started = time.perf_counter()
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size=-400000")  # 400 MB: random UUID keys
        gen = Generator(conn, scale, user_id, course_ids)
        gen.run()
    generated = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What autovacuum does on PostgreSQL a minute after such a load. SQLite gathers no
        # statistics by itself (the app never runs ANALYZE): its plans are measured without.
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE")
    analysed = time.perf_counter() - started - generated
    engine.dispose()
    return {
        "token": token,
        "special": gen.special,
        "rows": gen.counts,
        "generate_seconds": round(generated, 1),
        "analyze_seconds": round(analysed, 1),
    }


def reuse(app) -> dict:
    """A kept database (--reuse): a new token, and the two newest jobs (300 and 3 renders)."""
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import accounts, tokens

    with app.app_context():
        _, token = tokens.create_api_token(accounts.find_user("staff@example.com"), f"bench {time.time()}")
        newest = db.session.scalars(
            sa.select(VideoJob.id).order_by(VideoJob.created_at.desc()).limit(2)
        ).all()
        db.engine.dispose()
    return {"token": token, "special": {"300": str(newest[0]), "3": str(newest[1])}, "rows": "kept",
            "generate_seconds": None, "analyze_seconds": None}  # fmt: skip


def check_summaries(app, sample: int = 40) -> None:
    """The generated summaries are what summary.compute makes of the rows."""
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import summary

    with app.app_context():
        ids = db.session.scalars(sa.select(VideoJob.id).order_by(sa.func.random()).limit(sample)).all()
        for job_id in ids:
            job = db.session.get(VideoJob, job_id)
            status, data = summary.compute(job)
            assert (status.value, data) == (job.video_generation_status.value, job.video_generation_data), (
                job_id
            )
        db.session.rollback()
        db.engine.dispose()


def database_size(url: str, path: Path | None) -> int:
    if path is not None:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


# --- measuring -------------------------------------------------------------------------------


def cases(special: dict, scale: float) -> list[tuple[str, str, dict]]:
    status = "/video-transform/{}/video-generation-status"
    far = max(2, round(2000 * min(scale, 1.0)))  # page 2,000 at full scale: 40,000 jobs in
    htmx = {"HX-Request": "true"}
    return [
        ("html first page", "/jobs", {}),
        ("html search", f"/jobs?q={SEARCH_WORD}", {}),
        ("html status filter", "/jobs?status=failed", {}),
        ("html page 2000", f"/jobs?page={far}", {}),
        ("api first page", "/api/jobs", {}),
        ("api search", f"/api/jobs?q={SEARCH_WORD}", {}),
        ("api status filter", "/api/jobs?status=failed", {}),
        ("api page 2000", f"/api/jobs?page={far}", {}),
        ("status json 3 renders", status.format(special["3"]), {}),
        ("status json 300 renders", status.format(special["300"]), {}),
        ("status fragment 3 renders", status.format(special["3"]), htmx),
        ("status fragment 300 renders", status.format(special["300"]), htmx),
    ]


def measure(app, token: str, special: dict, args) -> list[dict]:
    from webapp.extensions import db

    client = app.test_client()
    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    rows = []
    for name, path, headers in cases(special, args.scale):
        headers = {"Authorization": f"Bearer {token}", **headers}
        for _ in range(5):  # warm-up: connections, template cache, the kept status document
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code, response.get_data()[:300])
        times, counts = [], []
        for _ in range(args.requests):
            statements.clear()
            started = time.perf_counter()
            client.get(path, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            counts.append(len(statements))
        times.sort()
        row = {
            "case": name,
            "path": path,
            "median_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, round(0.99 * len(times)) - 1)], 2),
            # Per request; the most differs when a request also notes a token's last use (a write).
            "statements": statistics.median_low(counts),
            "statements_max": max(counts),
        }
        row["ok"] = row["median_ms"] <= TARGET_MEDIAN_MS and row["p99_ms"] <= TARGET_P99_MS
        rows.append(row)
        verdict = "ok" if row["ok"] else "MISSED"
        count = f"{row['statements']}" + (
            f"-{row['statements_max']}" if row["statements_max"] > row["statements"] else ""
        )
        print(f"  {name:28}{row['median_ms']:9.1f}{row['p99_ms']:9.1f}{count:>6}  {verdict}", flush=True)
    return rows


def run(name: str, base: Path, args) -> dict:
    instance = base / name
    instance.mkdir(exist_ok=bool(args.reuse))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH")}
    env["INSTANCE_PATH"] = str(instance)
    sqlite_file = None
    if name == "postgres":
        import redis

        redis.Redis.from_url(REDIS_SERVER).flushdb()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}" if args.reuse else fresh_postgres()
        env.update(DATABASE_URL=url, REDIS_URL=REDIS_SERVER)
    else:
        sqlite_file = instance / "app.db"
        env["DATABASE_URL"] = f"sqlite:///{sqlite_file}"
    started = time.perf_counter()
    flask(env, "db", "upgrade")
    migrated = time.perf_counter() - started
    if name == "sqlite":
        flask(env, "redis", "start")
    for key in ("INSTANCE_PATH", "DATABASE_URL", "REDIS_URL"):  # create_app reads them
        os.environ.pop(key, None)
        if key in env:
            os.environ[key] = env[key]
    from webapp import create_app

    app = create_app()
    try:
        built = reuse(app) if args.reuse else build(app, env["DATABASE_URL"], args.scale)
        check_summaries(app)
        size = database_size(env["DATABASE_URL"], sqlite_file)
        print(
            f"{name}: {built['rows']} generated in {built['generate_seconds']} s "
            f"(+ {built['analyze_seconds']} s analyse, {migrated:.1f} s migrations), {size / 2**20:.0f} MB",
            flush=True,
        )
        print(f"  {'request':28}{'median':>9}{'p99 ms':>9}{'stmts':>6}", flush=True)
        rows = measure(app, built["token"], built["special"], args)
    finally:
        with app.app_context():
            from webapp.extensions import db

            db.engine.dispose()
        if name == "sqlite":
            flask(env, "redis", "stop")
    built.pop("token")
    return {
        "database": name,
        **built,
        "migrate_seconds": round(migrated, 1),
        "size_bytes": size,
        "results": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 100,000 jobs (e.g. 0.01)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="leave the databases (path printed)")
    parser.add_argument("--reuse", type=Path, help="measure again the databases a --keep run left there")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stops the embedded Redis on the way out
    base = args.reuse or Path(tempfile.mkdtemp(prefix="bigdata-bench-"))
    print(f"load average {os.getloadavg()[0]:.2f}, folder {base}", flush=True)
    results = []
    try:
        for name in ("sqlite", "postgres"):
            if args.only in (None, name):
                results.append(run(name, base, args))
    finally:
        if not (args.keep or args.reuse):
            shutil.rmtree(base, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    for database in results:
        n = {r["case"]: r["statements"] for r in database["results"]}
        missed = [r["case"] for r in database["results"] if not r["ok"]]
        print(
            f"{database['database']}: statements html page 1 / page 2000 {n['html first page']} / "
            f"{n['html page 2000']} (page 1 also reads the live progress of its generating jobs), "
            f"api {n['api first page']} / {n['api page 2000']}, fragment 3 / 300 renders "
            f"{n['status fragment 3 renders']} / {n['status fragment 300 renders']}; "
            f"targets missed: {', '.join(missed) or 'none'}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
