"""A real browser: markup planted in every field a user controls that reaches an
administrator's screen (file name, job title, lesson titles, token names, course names, user
emails, webhook URLs) runs nowhere, neither on our pages nor in the RQ dashboard."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue

from webapp.extensions import db
from webapp.models import Course, Lesson, Render, RenderState, User, utcnow
from webapp.services import recovery

from ..helpers import PASSWORD, bearer, wait_in_page

# What these check (layout, accessibility, escaping) no database or Redis can change.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.backend_free]

# Each piece calls alert() if it ever runs: as an element, a script, an attribute escape.
MARKUP = "<img src=x onerror=alert(1)><script>alert(2)</script>\"'><svg onload=alert(3)>"


@pytest.fixture
def planted(app, client, factory, redis_url):
    admin = factory.user("admin@example.com", role="admin", courses=[f"Course {MARKUP}"])
    factory.token(admin.email, name=f"Token {MARKUP}")
    staff = factory.user(courses=[f"Course {MARKUP}"])
    # An address with markup (refused when typed today; a row from before the check, planted
    # straight into the database), and a webhook URL.
    marked = factory.user(courses=[f"Course {MARKUP}"])
    with app.app_context():
        db.session.get(User, marked.id).email = marked.email = f"user{MARKUP}@example.com"
        db.session.commit()
        course_id = db.session.scalars(sa.select(Course.id).where(Course.name == f"Course {MARKUP}")).one()
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True  # no name lookup for the made-up host
    hook = {"url": f"https://hooks.example.com/{MARKUP}", "courseId": course_id}
    created = client.post("/api/webhooks", json=hook, headers=bearer(factory.token(admin.email)))
    assert created.status_code == 201, created.get_data(as_text=True)
    video = uuid.uuid4().hex[:11]
    factory.lessons(video, count=2)
    manifest_path = Path(app.config["LESSONS_ROOT"], video, "lesson_1", "lesson.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["title"] = f"Lesson {MARKUP}"
    manifest["segments"][0]["title"] = f"Segment {MARKUP}"
    manifest_path.write_text(json.dumps(manifest))
    job = factory.job(f"Course {MARKUP}", video_id=video, lessons=0, title=f"Job {MARKUP}")

    # The file name: refused at the door.
    body = {"jobId": job.id, "lessonPath": f"{video}/lesson_1", "outputFileName": f"{MARKUP}.mp4"}
    refused = client.post(
        "/video-transform/generate-video", json=body, headers=bearer(factory.token(staff.email))
    )
    assert refused.status_code == 422

    with app.app_context():
        lesson = db.session.scalars(sa.select(Lesson).where(Lesson.path == f"{video}/lesson_2")).one()
        # Rows from before the name check: a failed render whose name and reason carry markup,
        # and a queued one whose RQ job is gone, enqueued again through our own code.
        old = utcnow() - timedelta(minutes=5)
        for state, name in ((RenderState.FAILED, f"{MARKUP}.mp4"), (RenderState.QUEUED, f"{MARKUP}2.mp4")):
            row = Render(
                job_id=uuid.UUID(job.id),
                lesson_id=lesson.id,
                state=state,
                output_file_name=name,
                output_path=f"videos/{lesson.path}/{name}",
                error_kind="manifest" if state == RenderState.FAILED else None,
                error_message=f"segments[0].background: not a colour: {MARKUP}"
                if state == RenderState.FAILED
                else None,
                queued_at=old,
                finished_at=old if state == RenderState.FAILED else None,
                attempt=1,
            )
            row.id = uuid.uuid4()
            row.rq_job_id = f"render-{row.id}"
            db.session.add(row)
        db.session.commit()
        assert recovery.reap()["requeued"] == 1
    # Markup that reached RQ by some other road.
    raw = Queue("renders", connection=Redis.from_url(redis_url)).enqueue(
        "webapp.tasks.reap_lost_renders", description=MARKUP, meta={"note": MARKUP}
    )
    with app.app_context():
        requeued = db.session.scalars(sa.select(Render).where(Render.state == RenderState.QUEUED)).one()
    return {
        "admin": admin,
        "job": job,
        "raw": raw.id,
        "requeued": requeued.rq_job_id,
        "user": marked,
        "course_id": course_id,
        "hook_url": hook["url"],
    }


def test_planted_markup_runs_nowhere(browser, live_server, planted):
    page = browser.new_page()
    dialogs, csp_errors = [], []
    page.on("dialog", lambda dialog: (dialogs.append((page.url, dialog.message)), dialog.dismiss()))
    page.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and csp_errors.append((page.url, msg.text)),
    )

    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", planted["admin"].email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/jobs")

    job, user, course_id = planted["job"], planted["user"], planted["course_id"]
    ours = ["/jobs", f"/jobs/{job.id}", "/jobs/new", "/account", "/account/tokens", "/docs", "/webhooks"]
    ours += ["/admin/users", f"/admin/users/{user.id}", "/admin/courses", f"/admin/courses/{course_id}"]
    for path in ours:
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.querySelectorAll('main img, main svg, main script').length") == 0, path
    # The markup is there, as text a person can read.
    page.goto(f"{live_server}/jobs/{job.id}")
    text = page.text_content("main")  # the render history is folded away: text, not what shows
    assert f"Job {MARKUP}" in text and f"Lesson {MARKUP}" in text and f"not a colour: {MARKUP}" in text
    page.goto(f"{live_server}/account/tokens")
    assert f"Token {MARKUP}" in page.inner_text("main")
    for path, shown in (
        ("/admin/users", [user.email, f"Course {MARKUP}"]),
        ("/admin/courses", [f"Course {MARKUP}"]),
        (f"/admin/courses/{course_id}", [f"Course {MARKUP}", user.email]),
        ("/webhooks", [planted["hook_url"], f"Course {MARKUP}"]),
    ):
        page.goto(f"{live_server}{path}")
        text = page.text_content("main")
        assert all(item in text for item in shown), (path, [item for item in shown if item not in text])
    assert not csp_errors, csp_errors  # our own pages break none of our policy

    dashboard = [
        "/rq/",
        "/rq/0/view/workers",
        "/rq/0/view/jobs",
        f"/rq/0/view/job/{planted['raw']}",
        f"/rq/0/view/job/{planted['requeued']}",
    ]
    for path in dashboard:
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
    # The dashboard works under its policy: it fetched the planted job and shows its
    # description as text.
    job_data = "() => { const d = document.querySelector('#job-data'); return d && d.innerText.length > 0; }"
    page.goto(f"{live_server}/rq/0/view/job/{planted['raw']}")
    wait_in_page(page, job_data, what="the dashboard's job data")
    assert MARKUP in page.inner_text("#job-data")
    page.goto(f"{live_server}/rq/0/view/job/{planted['requeued']}")
    wait_in_page(page, job_data, what="the dashboard's job data")
    shown = page.inner_text("#job-data")
    assert "render " in shown and "<" not in shown and "mp4" not in shown

    assert dialogs == []


def test_the_dashboard_shows_a_failure_as_it_was_written(browser, live_server, factory, redis_url, work):
    """Its jobs list escapes a job's description and error itself: escaped once more by us, an
    operator read `File &quot;…&quot;` and `render&#x27;s` in every traceback."""
    admin = factory.user("ops@example.com", role="admin")
    Queue("maintenance", connection=Redis.from_url(redis_url)).enqueue(
        "webapp.tasks.no_such_task", description=MARKUP
    )
    work()  # fails, with a traceback full of quotes
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/jobs")
    page.goto(f"{live_server}/rq/0/view/jobs/maintenance/failed/8/asc/1")
    page.wait_for_selector("pre.exc_info")
    error = page.inner_text("pre.exc_info")
    assert 'File "' in error and "no_such_task" in error and "f'Invalid attribute name" in error
    assert "&quot;" not in error and "&#x27;" not in error
    assert page.inner_text("span.description") == MARKUP  # as text
    assert page.evaluate("document.querySelectorAll('tbody img, tbody svg, tbody script').length") == 0
    assert dialogs == []
    page.close()
