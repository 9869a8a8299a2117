"""The commands operators and scripts depend on."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import ApiToken, Course, Render, RenderState, User, VideoJob

from .helpers import bearer, csrf_token

ROOT = Path(__file__).resolve().parent.parent


def last_line(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_users_create_then_update_never_duplicates(app, runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Ann@Example.com",
            "--password",
            "first-password",
            "--course",
            "Thai 101",
            "--course",
            "Thai 102",
        ]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=[
            "users",
            "create",
            "ann@example.com",
            "--password",
            "second-password",
            "--role",
            "admin",
            "--course",
            "Thai 101",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        [user] = db.session.scalars(sa.select(User)).all()
        assert user.email == "ann@example.com" and user.role == "admin"
        assert user.check_password("second-password")
        assert sorted(c.name for c in user.courses) == ["Thai 101", "Thai 102"]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Course)) == 2


def test_users_create_refuses_bad_input(runner):
    assert (
        runner.invoke(args=["users", "create", "nobody@example.com"]).exit_code != 0
    )  # new user, no password
    assert runner.invoke(args=["users", "create", "not-an-email", "--password", "long-enough"]).exit_code != 0
    result = runner.invoke(args=["users", "create", "a@example.com", "--password", "short"])
    assert result.exit_code != 0 and "at least 8" in result.output
    assert (
        runner.invoke(
            args=["users", "create", "a@example.com", "--password", "long-enough", "--role", "owner"]
        ).exit_code
        != 0
    )


def test_tokens_create_prints_a_working_token_last(app, runner, client, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    token = last_line(runner.invoke(args=["tokens", "create", user.email, "--name", "ci"]))
    assert (
        client.get(f"/video-transform/{job.id}/video-generation-status", headers=bearer(token)).status_code
        == 200
    )
    with app.app_context():
        assert db.session.scalars(sa.select(ApiToken.name)).one() == "ci"
    again = runner.invoke(args=["tokens", "create", user.email, "--name", "ci"])
    assert again.output.startswith(f"Token 'ci (2)' for {user.email}")  # the name it was given
    assert runner.invoke(args=["tokens", "create", "ghost@example.com"]).exit_code != 0


def test_jobs_create_prints_the_job_id_last(app, runner, factory):
    factory.user(courses=["Thai 101"])
    factory.lessons("henIVlCPVIY", count=3)
    job_id = last_line(
        runner.invoke(
            args=[
                "jobs",
                "create",
                "--course",
                "Thai 101",
                "--video",
                "https://www.youtube.com/watch?v=henIVlCPVIY",
                "--title",
                "Greetings",
            ]
        )
    )
    with app.app_context():
        job = db.session.get(VideoJob, uuid.UUID(job_id))
        assert job.title == "Greetings" and len(job.lessons) == 3


def test_jobs_create_refuses_unknown_course_and_bad_video(runner, factory):
    factory.user(courses=["Thai 101"])
    result = runner.invoke(args=["jobs", "create", "--course", "Nope", "--video", "henIVlCPVIY"])
    assert result.exit_code != 0 and "no course named" in result.output
    result = runner.invoke(args=["jobs", "create", "--course", "Thai 101", "--video", "nope"])
    assert result.exit_code != 0 and "YouTube video id" in result.output


def test_demo_is_idempotent_and_its_login_works(app, runner, client):
    first = json.loads(last_line(runner.invoke(args=["demo"])))
    second = json.loads(last_line(runner.invoke(args=["demo"])))
    assert set(first) == {"jobId", "email", "password", "token"}
    assert first == second
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 1
        job = db.session.get(VideoJob, uuid.UUID(first["jobId"]))
        assert len(job.lessons) == 4 and all(lesson.problem is None for lesson in job.lessons)
    status = client.get(
        f"/video-transform/{first['jobId']}/video-generation-status", headers=bearer(first["token"])
    )
    assert status.json["totalLessons"] == 4
    login = client.post(
        "/login",
        data={"email": first["email"], "password": first["password"], "csrf_token": csrf_token(client)},
    )
    assert login.status_code == 302
    # Real media on disk: images and audio for every segment, Thai text in the manifest.
    lesson = Path(app.config["LESSONS_ROOT"]) / "henIVlCPVIY" / "lesson_1"
    manifest = json.loads((lesson / "lesson.json").read_text(encoding="utf-8"))
    assert all(
        (lesson / seg["image"]).stat().st_size > 0 and (lesson / seg["audio"]).stat().st_size > 0
        for seg in manifest["segments"]
    )
    # The last lesson shows every key: a clip of the video folder's source, motion, transitions.
    showcase = json.loads((lesson.parent / "lesson_4" / "lesson.json").read_text(encoding="utf-8"))
    keys = {key for seg in showcase["segments"] for key in seg}
    assert {"video", "motion", "transition", "captions", "caption", "videoVolume"} <= keys
    assert {"music", "captions", "loudness"} <= set(showcase)
    assert (lesson.parent / "source.mp4").stat().st_size > 0


def test_make_run_starts_with_a_first_video_on_its_way(app, runner, work, client):
    """A newcomer opening the demo job finds lesson 1 rendering (then playing), not 0 of 4 and
    nothing to press play on; running it again queues nothing more."""
    first = json.loads(last_line(runner.invoke(args=["demo", "--first-video"])))
    runner.invoke(args=["demo", "--first-video"])
    with app.app_context():
        queued = db.session.scalars(sa.select(Render)).all()
        assert [r.lesson.path for r in queued] == ["henIVlCPVIY/lesson_1"]
        assert queued[0].state == RenderState.QUEUED
    work()
    status = client.get(
        f"/video-transform/{first['jobId']}/video-generation-status", headers=bearer(first["token"])
    ).json
    assert status["completedLessons"] == 1 and status["generatedVideos"][0]["lessonPath"].endswith("lesson_1")


def test_demo_makes_a_new_password_when_the_old_one_was_changed(runner, factory):
    first = json.loads(last_line(runner.invoke(args=["demo"])))
    factory.user(first["email"], role="admin", password="changed by someone")
    second = json.loads(last_line(runner.invoke(args=["demo"])))
    assert second["password"] != first["password"]


def _flask(config: dict, *args, timeout=60):
    env = {**os.environ, **{k: str(v) for k, v in config.items() if k != "TESTING"}}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("command", [["worker", "--burst"], ["cron"]])
def test_a_worker_refuses_a_database_without_this_codes_tables(config, tmp_path, command):
    """A worker started without DATABASE_URL made its own empty SQLite, took renders from the
    shared Redis and failed each one ("no such table: renders"). It now refuses to start."""
    empty = tmp_path / "empty.db"
    out = _flask({**config, "DATABASE_URL": f"sqlite:///{empty}"}, *command)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        f"Error: not starting: the database (sqlite:///{empty}) has no tables yet: "
        "run `flask db upgrade` (or set DATABASE_URL)"
    )


def test_a_worker_refuses_what_it_cannot_reach_or_write(config, tmp_path):
    """Unreachable Redis was a traceback, and an unwritable videos folder let a render worker
    start and fail every render it took; both now stop the start with one line."""
    out = _flask({**config, "REDIS_URL": "redis://ops:s3cret@127.0.0.1:1/0"}, "worker", "--burst")
    assert out.returncode == 1 and "s3cret" not in out.stderr
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: not starting: Redis (redis://ops:***@127.0.0.1:1/0) does not answer: ")
    )
    (tmp_path / "a-file").write_text("")
    videos = tmp_path / "a-file" / "videos"
    out = _flask({**config, "VIDEOS_ROOT": str(videos)}, "worker", "--burst", "--queue", "renders")
    assert out.returncode == 1
    assert (
        out.stderr.strip().splitlines()[-1]
        == f"Error: not starting: VIDEOS_ROOT ({videos}) cannot be written here"
    )
    # A worker of the other queues writes no videos: it starts.
    assert (
        _flask({**config, "VIDEOS_ROOT": str(videos)}, "worker", "--burst", "--queue", "webhooks").returncode
        == 0
    )


def test_a_worker_on_the_embedded_redis_says_no_other_machine_sees_it(config, tmp_path):
    """A worker started without REDIS_URL on a machine of its own, beside a shared PostgreSQL,
    sat "listening" on a private Redis nobody enqueues to. It still may (one machine needs no
    Redis server), but says so; on SQLite (one machine's: `make run`) it says nothing."""
    alone = {key: value for key, value in config.items() if key != "REDIS_URL"}
    alone["INSTANCE_PATH"] = str(tmp_path / "instance")
    try:
        out = _flask(alone, "worker", "--burst", "--queue", "webhooks")
        assert out.returncode == 0, out.stderr
        warned = (
            f"REDIS_URL is not set: this process uses the embedded Redis of {tmp_path / 'instance'}, "
            "which no other machine sees"
        ) in out.stderr
        assert warned is not config["DATABASE_URL"].startswith("sqlite")
    finally:
        _flask(alone, "redis", "stop")


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"DATABASE_URL": "mysql://ops:s3cret@db/lessons"}, "DATABASE_URL must start with postgres://"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis:// or rediss:// or unix://"),
        ({"COURSE_RENDER_CONCURRENCY": "0"}, "COURSE_RENDER_CONCURRENCY must be at least 1, got 0"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_it(config, setting, message):
    """A wrong DATABASE_URL or REDIS_URL was a 100-150-line traceback (once per gunicorn worker,
    which gunicorn then started again); now one line, without the password, and exit status 3
    (gunicorn's "worker failed to boot": it stops)."""
    out = _flask({**config, **setting}, "jobs", "list")
    assert out.returncode == 3
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"Configuration error: {message}") and "s3cret" not in line


def test_real_flask_entry_point_reads_the_environment(app, config, factory):
    factory.lessons("henIVlCPVIY", count=2)
    out = _flask(
        config, "users", "create", "ops@example.com", "--password", "ops-password", "--course", "Ops"
    )
    assert out.returncode == 0, out.stderr
    out = _flask(config, "jobs", "create", "--course", "Ops", "--video", "henIVlCPVIY")
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().splitlines()[-1]
    with app.app_context():
        assert len(db.session.get(VideoJob, uuid.UUID(job_id)).lessons) == 2


def test_worker_burst_runs_and_exits(config, app):
    out = _flask(config, "worker", "--burst")
    assert out.returncode == 0, out.stderr
    assert "maintenance" in out.stderr and "renders" in out.stderr
