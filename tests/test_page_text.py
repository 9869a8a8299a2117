"""The job page says what is true now: the summary line, broken lessons, messages after actions,
durations and counts; the favicon."""

from __future__ import annotations

import collections
import re
import uuid

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Lesson, Render, RenderState, VideoJob
from webapp.services import lifecycle, messages, renders
from webapp.views.filters import duration

from .helpers import csrf_token

HTMX = {"HX-Request": "true"}


@pytest.fixture
def staff(auth, factory):
    user = factory.user("staff@example.com", courses=["Course A"])
    auth.login(user.email)
    return user


@pytest.fixture
def job(factory):
    return factory.job("Course A", lessons=2)


def _summary(html: str) -> str:
    """The summary line's text, tags removed."""
    line = re.search(r'<p class="summary">(.*?)</p>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


def _row(html: str, lesson_path: str) -> str:
    return re.search(
        rf'<tr class="lesson[^"]*" data-lesson="{re.escape(lesson_path)}"[^>]*>(.*?)</tr>', html, re.S
    ).group(1)


def _queue(app, job, lesson: int) -> uuid.UUID:
    with app.app_context():
        render = renders.generate(None, db.session.get(VideoJob, uuid.UUID(job.id)), job.lessons[lesson])
        return render.id


def _begin(app, render_id) -> None:
    with app.app_context():
        assert lifecycle.begin(f"render-{render_id}") is not None


def test_the_summary_names_a_lesson_only_while_it_renders(app, client, staff, job):
    render_id = _queue(app, job, 0)
    assert _summary(client.get(f"/jobs/{job.id}").text) == "generating 0 of 2 lessons generated · 1 queued"
    _begin(app, render_id)
    assert _summary(client.get(f"/jobs/{job.id}").text) == (
        f"generating 0 of 2 lessons generated · rendering {job.lessons[0]}"
    )
    with app.app_context():
        lifecycle.complete(render_id, frames=5, duration=0.5, size_bytes=100)
    line = _summary(client.get(f"/jobs/{job.id}").text)
    # The JSON keeps currentLesson (the original design's field); the page says what is true now.
    assert line == "completed 1 of 2 lessons generated"
    assert (
        client.get(f"/video-transform/{job.id}/video-generation-status").json["currentLesson"]
        == job.lessons[0]
    )


def test_a_rendering_lesson_is_named_by_its_title_and_its_row_says_how_far(app, client, staff, job):
    """The progress block named lessons by path only, and the lesson's own row said "rendering…"."""
    from webapp.services import progress

    render_id = _queue(app, job, 0)
    _begin(app, render_id)
    with app.app_context():
        progress.ProgressReporter(render_id)(50, 200)
        title = db.session.query(Lesson).filter_by(path=job.lessons[0]).one().title
    html = client.get(f"/jobs/{job.id}").text
    block = re.search(r'<div class="progress-row".*?</progress>', html, re.S).group(0)
    assert f"<strong>{title}</strong>" in block and f"<code>{job.lessons[0]}</code>" in block
    assert "rendering · 25.0%…" in _row(html, job.lessons[0])
    # A bar in the row too: on a phone the panel's bar is far above a lower lesson's row.
    assert '<progress class="row-progress" value="50" max="200"' in _row(html, job.lessons[0])
    assert "row-progress" not in _row(html, job.lessons[1])


def test_after_a_cancel_completed_says_a_render_was_cancelled(app, client, staff, job):
    done = _queue(app, job, 0)
    _begin(app, done)
    with app.app_context():
        lifecycle.complete(done, frames=5, duration=0.5, size_bytes=100)
    stopped = _queue(app, job, 1)
    with app.app_context():
        renders.cancel(db.session.get(Render, stopped))
    line = _summary(client.get(f"/jobs/{job.id}").text)
    assert line == f"completed 1 of 2 lessons generated · 1 render cancelled: {job.lessons[1]}"
    # Generated again, the lesson's latest attempt is no longer the cancelled one.
    _queue(app, job, 1)
    assert "cancelled" not in _summary(client.get(f"/jobs/{job.id}").text)


def test_one_lesson_and_two_lessons(app, client, staff, factory):
    assert messages.plural(1, "lesson") == "1 lesson" and messages.plural(2, "lesson") == "2 lessons"
    assert messages.plural(0, "lesson") == "0 lessons"
    single = factory.job("Course A", lessons=1)
    html = client.get(f"/jobs/{single.id}").text
    assert "0 of 1 lesson generated" in html and "(s)" not in html
    factory.lessons("oneLessonAA", count=1, course="Course A")
    page = client.get("/jobs/new").text
    course_id = re.search(r'<option value="(\d+)"[^>]*>Course A</option>', page).group(1)
    created = client.post(
        "/jobs",
        data={
            "course": course_id,
            "video": "oneLessonAA",
            "title": "",
            "csrf_token": csrf_token(client, "/jobs/new"),
        },
        follow_redirects=True,
    ).text
    assert "Job created with 1 lesson." in created


def _break_lesson(factory, job, number: int) -> str:
    (factory.lessons_root / job.video_id / f"lesson_{number}" / "lesson.json").write_text("{")
    return f"{job.video_id}/lesson_{number}"


def _problem(app, path: str) -> str:
    with app.app_context():
        return db.session.query(Lesson).filter_by(path=path).one().problem


def test_a_broken_lesson_shows_its_error_once_and_no_generate_button(app, client, staff, job, factory):
    broken = _break_lesson(factory, job, 2)
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    problem = _problem(app, broken)
    assert problem
    html = client.get(f"/jobs/{job.id}").text
    assert html.count(problem) == 1
    row = _row(html, broken)
    assert problem in row and "Generate" not in row and "Retry" not in row
    assert "Generate" in _row(html, job.lessons[0])

    # Generate all queues the good lesson and names the broken one, without its error again.
    token = csrf_token(client, f"/jobs/{job.id}")
    answer = client.post(f"/jobs/{job.id}/generate-all", data={"csrf_token": token}, headers=HTMX).text
    assert (
        f"1 lesson queued or already in progress. Skipped 1 lesson whose lesson.json is not valid: {broken}."
        in answer
    )
    assert answer.count(problem) == 1


def test_a_failed_render_of_a_broken_lesson_does_not_repeat_the_error(app, client, staff, job, factory):
    render_id = _queue(app, job, 1)
    _begin(app, render_id)
    broken = _break_lesson(factory, job, 2)
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    problem = _problem(app, broken)
    with app.app_context():
        lifecycle.fail(render_id, "manifest", problem)
    row = _row(client.get(f"/jobs/{job.id}").text, broken)
    # Once with the lesson; the attempts list (folded away) keeps each attempt's own reason.
    assert row.split("<details")[0].count(problem) == 1
    assert "Retry" not in row and "Generate" not in row


def test_segments_are_counted_from_one_on_the_page_as_in_the_chapters(app, client, staff, job, factory):
    """The renderer names `segments[0]` (the JSON path, which the API keeps); staff read the
    first segment as segment 1, as the chapters under the player count them."""
    manifest = factory.lessons_root / job.video_id / "lesson_2" / "lesson.json"
    manifest.write_text('{"title": "T", "segments": [{"duration": 1}, {"image": "gone.png", "duration": 1}]}')
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    problem = _problem(app, f"{job.video_id}/lesson_2")
    assert problem.startswith("segments[1].image: ")
    row = _row(client.get(f"/jobs/{job.id}").text, f"{job.video_id}/lesson_2")
    assert "segment 2, image: " in row and "segments[1]" not in row
    status = client.get(f"/api/jobs/{job.id}").json
    assert any((lesson["problem"] or "").startswith("segments[1].image") for lesson in status["lessons"])


def test_generate_all_leaves_finished_lessons_alone_unless_asked_again(app, client, staff, factory):
    """With some lessons done, the button renders the others (it re-rendered every lesson, each
    press adding attempts and sending render.completed and job.completed again); with all done,
    it asks before rendering them all again."""
    job = factory.job("Course A", lessons=3)
    done = _queue(app, job, 0)
    _begin(app, done)
    with app.app_context():
        lifecycle.complete(done, frames=5, duration=0.5, size_bytes=100)
    html = client.get(f"/jobs/{job.id}").text
    assert re.search(r'id="generate-all"[^>]*>Generate the other 2<', html)
    # A lesson that cannot be generated (its lesson.json broken) is not one of "the other N".
    broken = _break_lesson(factory, job, 3)
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    assert re.search(r'id="generate-all"[^>]*>Generate the other one<', client.get(f"/jobs/{job.id}").text)
    (factory.lessons_root / broken / "lesson.json").unlink()
    factory.lessons(job.video_id, 1, start=3)
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    token = csrf_token(client, f"/jobs/{job.id}")
    answer = client.post(
        f"/jobs/{job.id}/generate-all", data={"csrf_token": token, "missing": "1"}, headers=HTMX
    ).text
    assert "2 lessons queued or already in progress." in answer
    with app.app_context():
        attempts = db.session.scalars(sa.select(Render.lesson_id).where(Render.job_id == uuid.UUID(job.id)))
        assert sorted(collections.Counter(attempts).values()) == [1, 1, 1]  # the finished one: no new attempt
        for render in db.session.scalars(sa.select(Render).where(Render.state == RenderState.QUEUED)):
            _begin(app, render.id)
            lifecycle.complete(render.id, frames=5, duration=0.5, size_bytes=100)
    html = client.get(f"/jobs/{job.id}").text
    again = re.search(
        r'<form[^>]*hx-confirm="([^"]+)"[^>]*>\s*<input[^>]*>\s*<button[^>]*id="generate-all"[^>]*>([^<]+)<',
        html,
    )
    assert again and again.group(2) == "Generate all again" and "3 lessons" in again.group(1)
    # Without `missing` (that button, and the API's generate-all): every lesson.
    assert (
        client.post(f"/jobs/{job.id}/generate-all", data={"csrf_token": token}, headers=HTMX).status_code
        == 200
    )
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Render)) == 6


def test_a_render_failed_by_its_files_says_to_fix_them_before_a_retry(app, client, staff, job):
    """A lesson's files that fail while rendering (they passed the check: a clip that does not
    decode) fail the same way again: Retry is not the obvious next step, fixing them is."""
    render_id = _queue(app, job, 0)
    _begin(app, render_id)
    with app.app_context():
        lifecycle.fail(render_id, "manifest", "segments[3].video: cannot decode video (Invalid data)")
    row = _row(client.get(f"/jobs/{job.id}").text, job.lessons[0])
    assert "segment 4, video: cannot decode video" in row
    files = f'href="/jobs/{job.id}/lessons/1/files"'
    assert "fix them under" in row and files in row and 'href="#lesson-files-title"' in row
    assert re.search(r'class="small secondary"[^>]*>Retry<', row)  # not the page's primary action
    other = _queue(app, job, 1)
    _begin(app, other)
    with app.app_context():
        lifecycle.fail(other, "transient", "The lessons folder could not be read.")
    row = _row(client.get(f"/jobs/{job.id}").text, job.lessons[1])
    assert "fix them" not in row and re.search(r'class="small "[^>]*>Retry<', row)


def test_a_video_made_from_files_since_replaced_says_so(app, client, staff, job, tmp_path):
    """After new files were uploaded for a lesson its row still read "completed" beside the old
    video, as if it showed them: it now says the video is of the files before."""
    import io

    from .test_uploads import lesson_files, make_zip

    done = _queue(app, job, 0)
    _begin(app, done)
    with app.app_context():
        lifecycle.complete(done, frames=5, duration=0.5, size_bytes=100)
    assert "New files since this video" not in _row(client.get(f"/jobs/{job.id}").text, job.lessons[0])
    client.post(
        f"/jobs/{job.id}/lessons",
        data={
            "package": (io.BytesIO(make_zip(lesson_files(tmp_path, "Second take"))), "p.zip"),
            "lesson": "1",
            "csrf_token": csrf_token(client, f"/jobs/{job.id}"),
        },
        content_type="multipart/form-data",
    )
    row = _row(client.get(f"/jobs/{job.id}").text, job.lessons[0])
    assert "Second take" in row and "New files since this video" in row
    assert "Generate again" in row
    assert "New files since" not in _row(client.get(f"/jobs/{job.id}").text, job.lessons[1])
    again = _queue(app, job, 0)  # a render of the new files: asked for, the hint has been followed
    assert "New files since this video" not in _row(client.get(f"/jobs/{job.id}").text, job.lessons[0])
    _begin(app, again)
    with app.app_context():
        lifecycle.complete(again, frames=5, duration=0.5, size_bytes=100)
    assert "New files since this video" not in _row(client.get(f"/jobs/{job.id}").text, job.lessons[0])


def test_an_action_message_replaces_the_page_messages(app, client, staff, job):
    # A plain post leaves a message on the page it redirects to.
    page = client.post(
        f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")}, follow_redirects=True
    ).text
    assert re.search(
        r'<div id="flashes"[^>]*>\s*<p class="flash flash-info" role="status">Lessons rescanned', page
    )
    # An htmx action answers the panel and, out of band, the page's messages: its own message
    # replaces the one before, and it stays when the panel reloads.
    token = csrf_token(client, f"/jobs/{job.id}")
    answer = client.post(
        f"/jobs/{job.id}/generate", data={"csrf_token": token, "lessonPath": job.lessons[0]}, headers=HTMX
    ).text
    panel, _, rest = answer.partition("</section>")
    assert "render queued" not in panel
    flash = r'<div id="flashes" hx-swap-oob="innerHTML"><p class="flash flash-info" role="status"[^>]*>'
    assert re.search(flash + r"[^<]*render queued", rest)
    reload = client.get(f"/video-transform/{job.id}/video-generation-status", headers=HTMX).text
    assert "flashes" not in reload


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(30.0, "0:30"), (29.6, "0:29"), (29.9999999, "0:30"), (7.5, "0:07"), (0.4, "0:00"), (3725.2, "1:02:05")],
)
def test_durations_are_cut_to_whole_seconds_as_players_show_them(seconds, shown):
    """Players show a 29.6 s video as 0:29 (whole seconds elapsed); the table says the same."""
    assert duration(seconds) == shown


def test_favicon(client):
    login = client.get("/login").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.headers["Location"] == "/static/favicon.svg"
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_the_token_page_offers_to_copy_a_new_token(client, staff):
    page = client.post(
        "/account/tokens",
        data={"name": "LMS", "csrf_token": csrf_token(client, "/account/tokens")},
        follow_redirects=True,
    ).text
    assert re.search(r'<code class="token" id="new-token">lvt_', page)
    assert re.search(r'<button type="button" [^>]*data-copy="#new-token"[^>]*>Copy</button>', page)


def test_a_failed_job_says_which_lessons_failed(app, client, staff, job):
    """ "failed" named no lesson (a cancelled one it did): on a long job staff scrolled every row
    to find the one to fix."""
    from webapp.models import ErrorKind

    for lesson in (0, 1):
        render_id = _queue(app, job, lesson)
        _begin(app, render_id)
        with app.app_context():
            if lesson == 0:
                lifecycle.fail(render_id, ErrorKind.MANIFEST, "segments[0].audio: file not found")
            else:
                lifecycle.mark_cancelled(render_id)
    line = _summary(client.get(f"/jobs/{job.id}").text)
    assert line == (
        f"failed 0 of 2 lessons generated · 1 render failed: {job.lessons[0]}"
        f" · 1 render cancelled: {job.lessons[1]}"
    )


def test_generate_all_is_offered_only_while_it_would_start_something(app, client, staff, job):
    """With every lesson queued or rendering, "Generate all" stayed, and pressing it only said
    "2 lessons queued or already in progress."."""
    assert 'id="generate-all"' in client.get(f"/jobs/{job.id}").text
    first = _queue(app, job, 0)
    assert 'id="generate-all"' in client.get(f"/jobs/{job.id}").text  # lesson 2 would start
    _queue(app, job, 1)
    assert 'id="generate-all"' not in client.get(f"/jobs/{job.id}").text
    with app.app_context():
        renders.cancel(db.session.get(Render, first))
    assert 'id="generate-all"' in client.get(f"/jobs/{job.id}").text
