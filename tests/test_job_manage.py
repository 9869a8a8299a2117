"""Renaming and deleting a job from its page; the jobs list's "n of m generated" and live progress."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Render, VideoJob

from .helpers import csrf_token
from .test_scope import finished_render
from .test_statement_counts import _add_jobs, _statements


@pytest.fixture
def people(factory):
    alice = factory.user("alice@example.com", courses=["Course A"])
    bob = factory.user("bob@example.com", courses=["Course B"])
    return alice, bob


def job_row(app, job_id: str) -> VideoJob | None:
    with app.app_context():
        return db.session.get(VideoJob, uuid.UUID(job_id))


def post(client, path: str, data: dict | None = None, **kwargs):
    return client.post(path, data={"csrf_token": csrf_token(client, "/jobs"), **(data or {})}, **kwargs)


# --- rename and delete from the job page -------------------------------------------------------


def test_job_page_offers_rename_and_a_delete_that_asks_first(client, auth, factory, people):
    job = factory.job("Course A", title="Greetings", lessons=1)
    auth.login("alice@example.com")
    html = client.get(f"/jobs/{job.id}").text
    assert f'action="/jobs/{job.id}/rename"' in html and 'name="title" value="Greetings"' in html
    delete_form = re.search(rf'<form method="post" action="/jobs/{job.id}/delete"[^>]*>', html).group(0)
    confirm = re.search(r'data-confirm="([^"]+)"', delete_form).group(1)
    assert "Greetings" in confirm and "render" in confirm and "lesson folders stay on disk" in confirm
    assert 'name="delete_videos"' in html


def test_rename_from_the_page(app, client, auth, factory, people):
    job = factory.job("Course A", title="Old title", lessons=0)
    auth.login("alice@example.com")
    response = post(client, f"/jobs/{job.id}/rename", {"title": "  New   title "}, follow_redirects=True)
    assert "Job renamed to “New title”" in response.text
    assert job_row(app, job.id).title == "New title"
    # Empty: the default title; too long: refused, the title stays.
    post(client, f"/jobs/{job.id}/rename", {"title": ""})
    assert job_row(app, job.id).title == f"Video {job.video_id}"
    response = post(client, f"/jobs/{job.id}/rename", {"title": "x" * 201}, follow_redirects=True)
    assert "at most 200 characters" in response.text
    assert job_row(app, job.id).title == f"Video {job.video_id}"


def test_a_renamed_title_is_shown_escaped(client, auth, factory, people):
    job = factory.job("Course A", lessons=0)
    auth.login("alice@example.com")
    post(client, f"/jobs/{job.id}/rename", {"title": '<img src=x onerror="alert(1)">'})
    for path in (f"/jobs/{job.id}", "/jobs"):
        html = client.get(path).text
        assert "<img src=x" not in html and "&lt;img src=x" in html


def test_delete_from_the_page_keeps_lesson_folders_and_videos(app, client, auth, factory, people):
    job = factory.job("Course A", title="Doomed", lessons=1)
    render_id = finished_render(app, job)
    video = Path(app.config["VIDEOS_ROOT"]) / job.lessons[0] / "final_video.mp4"
    auth.login("alice@example.com")
    response = post(client, f"/jobs/{job.id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/jobs"
    page = client.get("/jobs").text
    assert "Job “Doomed” deleted" in page and "video files were kept" in page
    assert job_row(app, job.id) is None
    with app.app_context():
        assert db.session.get(Render, uuid.UUID(render_id)) is None
    assert (factory.lessons_root / job.lessons[0] / "lesson.json").is_file()
    assert video.is_file()
    assert client.get(f"/jobs/{job.id}").status_code == 404


def test_delete_with_the_videos(app, client, auth, factory, people):
    job = factory.job("Course A", lessons=1)
    finished_render(app, job)
    video = Path(app.config["VIDEOS_ROOT"]) / job.lessons[0] / "final_video.mp4"
    auth.login("alice@example.com")
    response = post(client, f"/jobs/{job.id}/delete", {"delete_videos": "y"}, follow_redirects=True)
    assert "video files were deleted" in response.text
    assert not video.exists()
    assert (factory.lessons_root / job.lessons[0] / "lesson.json").is_file()


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_another_courses_staff_get_404_and_change_nothing(app, client, auth, factory, people, action):
    job = factory.job("Course A", title="Alice's job", lessons=1)
    auth.login("bob@example.com")
    response = post(client, f"/jobs/{job.id}/{action}", {"title": "Owned by Bob", "delete_videos": "y"})
    assert response.status_code == 404
    # The same answer as for a job that does not exist.
    missing = post(client, f"/jobs/{uuid.uuid4()}/{action}", {"title": "x"})
    assert missing.status_code == 404
    row = job_row(app, job.id)
    assert row is not None and row.title == "Alice's job"


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_rename_and_delete_need_the_csrf_token(app, client, auth, factory, people, action):
    job = factory.job("Course A", title="Kept", lessons=0)
    auth.login("alice@example.com")
    response = client.post(f"/jobs/{job.id}/{action}", data={"title": "Forged"})
    assert response.status_code == 400
    assert job_row(app, job.id).title == "Kept"


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_a_stranger_is_sent_to_log_in(app, client, factory, action):
    job = factory.job("Course A", title="Kept", lessons=0)
    response = client.post(f"/jobs/{job.id}/{action}", data={"title": "Forged"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert job_row(app, job.id).title == "Kept"


def test_admins_may_rename_and_delete_any_job(app, client, auth, factory, people):
    factory.user("root@example.com", role="admin")
    job = factory.job("Course B", lessons=0)
    auth.login("root@example.com")
    post(client, f"/jobs/{job.id}/rename", {"title": "By the admin"})
    assert job_row(app, job.id).title == "By the admin"
    assert post(client, f"/jobs/{job.id}/delete").status_code == 302
    assert job_row(app, job.id) is None


# --- the jobs list: n of m generated, and progress while something renders ------------------------


def cells(html: str) -> dict[str, str]:
    """Title → the text of its row's "generated" cell."""
    rows = re.findall(
        r'<a href="/jobs/[^"]+"[^>]*>([^<]+)</a></td>.*?<td class="generated"[^>]*>(.*?)</td>', html, re.S
    )
    return {title: " ".join(re.sub(r"<[^>]+>", " ", cell).split()) for title, cell in rows}


def test_jobs_list_shows_n_of_m_generated_and_live_progress(app, client, auth, factory, people):
    from webapp.services import lifecycle, progress, renders

    factory.job("Course A", title="Idle", lessons=3)
    done = factory.job("Course A", title="Done", lessons=2)
    finished_render(app, done)
    busy = factory.job("Course A", title="Busy", lessons=3)
    with app.app_context():
        job = db.session.get(VideoJob, uuid.UUID(busy.id))
        first = renders.generate(None, job, busy.lessons[0])
        renders.generate(None, job, busy.lessons[1])  # stays queued
        lifecycle.begin(first.rq_job_id)
        progress.record_progress(first.id, 25, 100)
        first_id = first.id
    auth.login("alice@example.com")
    html = client.get("/jobs").text
    found = cells(html)
    assert found["Idle"] == "0 of 3 generated"
    assert found["Done"] == "1 of 2 generated"
    # The bar is the job's: of the two lessons asked for, one a quarter rendered (it was that
    # lesson's own 25%, nearly full while nothing was finished, back to 0 at the next lesson).
    assert found["Busy"] == "0 of 3 generated 12.5% · 1 rendering · 1 queued"
    assert '<progress value="12.5" max="100" aria-label="Progress of Busy"' in html
    # While something renders the table reloads itself every 3 s; when nothing does, every 15 s
    # (a render started in another tab, by a colleague or over the API shows up).
    assert 'id="jobs-table" hx-get="/jobs" hx-trigger="every 3s"' in html
    with app.app_context():
        lifecycle.complete(first_id, frames=100, duration=4.0, size_bytes=1000)
        second = db.session.scalars(sa.select(Render).where(Render.state == "queued")).one()
        lifecycle.begin(second.rq_job_id)
        progress.record_progress(second.id, 10, 100)
        second_id = second.id
    found = cells(client.get("/jobs").text)
    assert found["Busy"] == "1 of 3 generated 55.0% · 1 rendering"  # onwards from half, not back to 10%
    with app.app_context():
        lifecycle.mark_cancelled(second_id)
    html = client.get("/jobs").text
    assert 'hx-trigger="every 15s"' in html and cells(html)["Busy"] == "1 of 3 generated"


def test_the_polling_table_keeps_the_filters(client, auth, factory, people, app):
    from webapp.services import renders

    busy = factory.job("Course A", title="Busy", lessons=1)
    with app.app_context():
        renders.generate(None, db.session.get(VideoJob, uuid.UUID(busy.id)), busy.lessons[0])
    auth.login("alice@example.com")
    html = client.get("/jobs?q=Bus&status=generating").text
    assert 'hx-get="/jobs?q=Bus&amp;status=generating"' in html
    assert cells(html)["Busy"] == "0 of 1 generated 1 queued"


def test_progress_costs_one_query_per_page_not_per_row(app, client, auth, factory):
    factory.user("member@example.com", courses=["Small", "Large"])
    auth.login("member@example.com")
    _add_jobs(app, "Small", jobs=2, lessons=3, renders=2)  # each job has renders still rendering
    small = _statements(app, client, "/jobs")
    _add_jobs(app, "Large", jobs=50, lessons=3, renders=2)
    large = _statements(app, client, "/jobs")
    assert small == large
    html = client.get("/jobs").text
    assert "50.0% · 3 rendering" in html  # 5 of 10 frames in each of the three renders


def test_the_jobs_list_refuses_an_unknown_status_and_comes_back_from_past_its_end(
    client, auth, factory, people
):
    for n in range(3):
        factory.job("Course A", title=f"Job {n}", lessons=0)
    auth.login("alice@example.com")
    refused = client.get("/jobs?status=bogus")
    assert refused.status_code == 400 and "status must be one of: not_started" in refused.text
    past = client.get("/jobs?page=999&q=Job")
    assert past.status_code == 302
    assert past.headers["Location"] in ("/jobs?page=1&q=Job", "/jobs?q=Job&page=1")
    assert "Job 2" in client.get(past.headers["Location"]).text
    # The way back carries the list's own filters only, not url_for's own arguments from the URL.
    for junk in ("_method=POST", "_anchor=x", "_external=1", "_scheme=javascript", "other=1"):
        back = client.get(f"/jobs?page=5&q=Job&{junk}")
        assert back.status_code == 302, junk
        assert back.headers["Location"] in ("/jobs?page=1&q=Job", "/jobs?q=Job&page=1"), junk
