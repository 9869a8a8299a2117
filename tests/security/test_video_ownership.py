"""A video id, its lesson folder and its videos belong to one job, so to one course."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from webapp import create_app
from webapp.extensions import db
from webapp.models import Course, VideoJob

from ..helpers import base_config, bearer, csrf_token


@pytest.fixture
def taken(factory):
    """Course A has a job for a video; Bob is staff of course B."""
    job = factory.job("Course A", title="Alpha's secret plans", lessons=1)
    bob = factory.user("bob@example.com", courses=["Course B"])
    return job, bob


def test_second_job_for_a_video_is_409_on_the_page_naming_no_course(client, auth, factory, taken):
    job, bob = taken
    auth.login(bob.email)
    with client.application.app_context():
        course_b = db.session.scalars(sa.select(Course).where(Course.name == "Course B")).one()
    form = {"csrf_token": csrf_token(client, "/jobs/new"), "course": course_b.id, "video": job.video_id}
    response = client.post("/jobs", data=form)
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert f"Video {job.video_id} already has a job" in text
    assert "Course A" not in text and "Alpha" not in text and job.id not in text
    # Nothing of course A's lessons reached course B.
    with client.application.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(VideoJob)) == 1


def test_a_member_of_the_same_course_gets_a_link_to_the_job(client, auth, factory, taken):
    job, _ = taken
    alice = factory.user("alice@example.com", courses=["Course A"])
    auth.login(alice.email)
    with client.application.app_context():
        course_a = db.session.scalars(sa.select(Course).where(Course.name == "Course A")).one()
    form = {"csrf_token": csrf_token(client, "/jobs/new"), "course": course_a.id, "video": job.video_id}
    response = client.post("/jobs", data=form)
    assert response.status_code == 409 and f"/jobs/{job.id}" in response.get_data(as_text=True)


def test_second_job_from_the_cli_exits_non_zero(runner, factory, taken):
    job, _ = taken
    result = runner.invoke(args=["jobs", "create", "--course", "Course B", "--video", job.video_id])
    assert result.exit_code != 0
    assert "already has a job" in result.output and "Course A" not in result.output


def test_the_database_refuses_two_jobs_for_one_video(app, factory, taken):
    job, _ = taken
    with app.app_context():
        course = db.session.scalars(sa.select(Course)).first()
        db.session.add(VideoJob(course=course, video_id=job.video_id, title="copy"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_admin_moves_a_job_to_another_course(app, client, auth, factory, taken):
    job, bob = taken
    admin = factory.user("root@example.com", role="admin")
    bob_token = factory.token(bob.email)
    assert client.get(f"/api/jobs/{job.id}", headers=bearer(bob_token)).status_code == 404
    auth.login(admin.email)
    with app.app_context():
        course_b = db.session.scalars(sa.select(Course).where(Course.name == "Course B")).one()
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Move to course" in page
    response = client.post(
        f"/jobs/{job.id}/move", data={"csrf_token": csrf_token(client, "/jobs"), "course": course_b.id}
    )
    assert response.status_code == 302
    assert client.get(f"/api/jobs/{job.id}", headers=bearer(bob_token)).json["course"] == "Course B"


def test_staff_cannot_move_a_job(client, auth, factory, taken):
    job, _ = taken
    alice = factory.user("alice@example.com", courses=["Course A", "Course B"])
    auth.login(alice.email)
    assert "Move to course" not in client.get(f"/jobs/{job.id}").get_data(as_text=True)
    response = client.post(
        f"/jobs/{job.id}/move", data={"csrf_token": csrf_token(client, "/jobs"), "course": 1}
    )
    assert response.status_code == 403


def test_cli_moves_and_deletes_jobs(app, runner, client, factory, taken):
    job, bob = taken
    bob_token = factory.token(bob.email)
    result = runner.invoke(args=["jobs", "move", job.id, "--course", "Course B"])
    assert result.exit_code == 0, result.output
    assert client.get(f"/api/jobs/{job.id}", headers=bearer(bob_token)).status_code == 200
    assert runner.invoke(args=["jobs", "move", str(uuid.uuid4()), "--course", "Course B"]).exit_code != 0
    assert runner.invoke(args=["jobs", "delete", job.id]).exit_code == 0
    assert client.get(f"/api/jobs/{job.id}", headers=bearer(bob_token)).status_code == 404
    # The video is free again.
    result = runner.invoke(args=["jobs", "create", "--course", "Course B", "--video", job.video_id])
    assert result.exit_code == 0, result.output


def _uuid_value() -> str:
    # sa.Uuid stores 32 hex digits on SQLite and a native uuid on PostgreSQL.
    value = uuid.uuid4()
    return value.hex if db.engine.dialect.name == "sqlite" else str(value)


def test_upgrade_stops_on_two_jobs_for_one_video(tmp_path, server_database, redis_url, capfd):
    url = server_database("dupes") if server_database else f"sqlite:///{tmp_path / 'dupes.db'}"
    app = create_app(base_config(tmp_path, url, redis_url))
    with app.app_context():
        flask_migrate.upgrade(revision="0002_video_generation_status")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO courses (id, name, created_at) VALUES (1, 'A', '2026-01-01')"))
            for title in ("one", "two"):
                conn.execute(
                    sa.text(
                        "INSERT INTO video_jobs (id, course_id, video_id, title, created_at, updated_at) "
                        "VALUES (:id, 1, 'dupVideo123', :title, '2026-01-01', '2026-01-01')"
                    ),
                    {"id": _uuid_value(), "title": title},
                )
        with pytest.raises(SystemExit):
            flask_migrate.upgrade()
        assert "dupVideo123 (2 jobs)" in capfd.readouterr().err
        db.engine.dispose()


def _course_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalars(sa.select(Course.id).where(Course.name == name)).one()


def test_a_deleted_jobs_lessons_stay_with_its_course(app, client, factory, taken):
    """Deleting a job leaves its lesson folders on disk: staff of another course cannot take the
    video id over afterwards and read them (an administrator can give them to another course)."""
    job, bob = taken
    alice = factory.user("alice@example.com", courses=["Course A"])
    a, b = bearer(factory.token(alice.email)), bearer(factory.token(bob.email))
    assert client.delete(f"/api/jobs/{job.id}", headers=a).status_code == 204

    body = {"video": job.video_id, "courseId": _course_id(app, "Course B"), "title": "mine now"}
    response = client.post("/api/jobs", json=body, headers=b)
    assert response.status_code == 409, response.json
    text = response.get_data(as_text=True)
    assert "Course A" not in text and "Alpha" not in text and "lesson_1" not in text
    assert "administrator" in response.json["message"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(VideoJob)) == 0

    # Its own course takes it back.
    body["courseId"] = _course_id(app, "Course A")
    again = client.post("/api/jobs", json=body, headers=a)
    assert again.status_code == 201 and len(again.json["lessons"]) == 1


def test_staff_of_the_old_course_and_admins_may_take_a_released_video(app, client, auth, factory, taken):
    job, bob = taken
    both = factory.user("both@example.com", courses=["Course A", "Course B"])
    admin = factory.user("root@example.com", role="admin")
    assert runner_delete(app, job.id)
    # Staff of both courses may move the material to the other one of theirs.
    body = {"video": job.video_id, "courseId": _course_id(app, "Course B")}
    created = client.post("/api/jobs", json=body, headers=bearer(factory.token(both.email)))
    assert created.status_code == 201
    b = bearer(factory.token(bob.email))
    assert client.get(f"/api/jobs/{created.json['id']}", headers=b).status_code == 200

    # Deleted again (now held by course B): an administrator gives it to course C.
    assert client.delete(f"/api/jobs/{created.json['id']}", headers=b).status_code == 204
    factory.user("carol@example.com", courses=["Course C"])
    auth.login(admin.email)
    form = {"csrf_token": csrf_token(client, "/jobs/new"), "course": _course_id(app, "Course C")}
    assert client.post("/jobs", data={**form, "video": job.video_id}).status_code == 302


def test_the_page_refuses_a_released_video_of_another_course(app, client, auth, factory, taken):
    job, bob = taken
    assert runner_delete(app, job.id)
    auth.login(bob.email)
    form = {"csrf_token": csrf_token(client, "/jobs/new"), "course": _course_id(app, "Course B")}
    response = client.post("/jobs", data={**form, "video": job.video_id})
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "administrator" in text and "Course A" not in text


def runner_delete(app, job_id: str) -> bool:
    result = app.test_cli_runner().invoke(args=["jobs", "delete", job_id])
    return result.exit_code == 0


# --- material left in the lessons folder by the pipeline, before any job --------------------


def _course_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalars(sa.select(Course.id).where(Course.name == name)).one()


def _create(client, token: str, video: str, course_id: int):
    return client.post("/api/jobs", json={"video": video, "courseId": course_id}, headers=bearer(token))


@pytest.fixture
def pipeline(app, factory):
    """A video whose lessons the pipeline left on disk (no job yet); Alice is staff of course A,
    Bob of course B, Root an administrator."""
    video = "PipeVideo01"
    factory.lessons(video, 2)
    people = {
        "alice": factory.token(factory.user("alice@example.com", courses=["Course A"]).email),
        "bob": factory.token(factory.user("bob@example.com", courses=["Course B"]).email),
        "root": factory.token(factory.user("root@example.com", role="admin").email),
    }
    return video, people, factory.lessons_root / video


def test_material_from_outside_the_app_is_not_claimed_by_whoever_asks_first(app, client, pipeline):
    """Nobody can tell whose unmarked material it is: staff of any course claimed it first, read
    it (package download), replaced it, and locked its course out. Now only an administrator
    creates its job, in the course they choose."""
    video, people, _ = pipeline
    refused = _create(client, people["bob"], video, _course_id(app, "Course B"))
    assert refused.status_code == 409
    message = refused.json["message"]
    assert "administrator" in message and f"{video}/course.txt" in message
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(VideoJob)) == 0
    made = _create(client, people["root"], video, _course_id(app, "Course A"))
    assert made.status_code == 201
    job = client.get(made.headers["Location"], headers=bearer(people["alice"])).json
    assert [lesson["path"] for lesson in job["lessons"]] == [f"{video}/lesson_1", f"{video}/lesson_2"]


def test_material_marked_for_a_course_is_claimed_by_that_course_only(app, client, pipeline):
    video, people, folder = pipeline
    (folder / "course.txt").write_text("course a\n", encoding="utf-8")  # its name, letter case aside
    assert _create(client, people["bob"], video, _course_id(app, "Course B")).status_code == 409
    made = _create(client, people["alice"], video, _course_id(app, "Course A"))
    assert made.status_code == 201


def test_the_page_says_whom_to_ask(app, client, auth, pipeline):
    video, _, _ = pipeline
    auth.login("bob@example.com")
    form = {
        "csrf_token": csrf_token(client, "/jobs/new"),
        "course": _course_id(app, "Course B"),
        "video": video,
    }
    response = client.post("/jobs", data=form)
    assert response.status_code == 409 and "An administrator can create its job" in response.text


def test_a_new_video_is_anyones_to_start(app, client, pipeline):
    """No material on disk yet (or only an empty folder): staff create the job and upload."""
    _, people, folder = pipeline
    (folder.parent / "EmptyVideo1").mkdir()
    for video in ("FreshVideo1", "EmptyVideo1"):
        assert _create(client, people["bob"], video, _course_id(app, "Course B")).status_code == 201


def test_material_marked_for_another_course_stays_out_of_an_earlier_jobs_reach(
    app, client, runner, pipeline, tmp_path
):
    """Staff of course B start a job for a video before its material exists; the pipeline then
    writes course A's material there, marked for A. B's rescans picked it up (read, render,
    replace it, and A locked out): now B's job sees none of it and may not write over it."""
    from ..test_uploads import lesson_files, package

    _, people, _ = pipeline
    video = "LaterVideo1"
    made = _create(client, people["bob"], video, _course_id(app, "Course B"))
    assert made.status_code == 201
    job_id = made.json["id"]
    folder = Path(app.config["LESSONS_ROOT"]) / video
    (folder / "lesson_1").mkdir(parents=True)
    for name, data in lesson_files(tmp_path, "Course A's lesson").items():
        (folder / "lesson_1" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "lesson_1" / name).write_bytes(data)
    (folder / "course.txt").write_text("Course A\n", encoding="utf-8")
    before = sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file())

    rescan = client.post(f"/api/jobs/{job_id}/rescan", headers=bearer(people["bob"]))
    assert rescan.status_code == 200 and rescan.json["job"]["lessons"] == []
    assert "marked for another course" in rescan.json["message"] and "Course A" not in rescan.json["message"]
    assert client.get(f"/api/jobs/{job_id}/lessons/package", headers=bearer(people["bob"])).status_code == 404
    overwrite = client.post(
        f"/api/jobs/{job_id}/lessons",
        data={"package": (io.BytesIO(package(lesson_1=lesson_files(tmp_path, "Bob's"))), "p.zip")},
        content_type="multipart/form-data",
        headers=bearer(people["bob"]),
    )
    assert overwrite.status_code == 409 and "marked for another course" in overwrite.json["message"]
    assert sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file()) == before
    # An administrator gives the job to the course it was made for: there it is.
    assert runner.invoke(args=["jobs", "move", job_id, "--course", "Course A"]).exit_code == 0
    rescan = client.post(f"/api/jobs/{job_id}/rescan", headers=bearer(people["alice"]))
    assert [lesson["title"] for lesson in rescan.json["job"]["lessons"]] == ["Course A's lesson"]
