"""What course staff do, in a real browser (Chromium through Playwright) against a live server,
real workers and Redis: log in and out, find jobs, create one, generate all and play the videos,
cancel, retry, rename and delete, and an administrator's invitation. Each flow at 1280 px and at
390 px wide, and each ends with no sideways scroll.

Screenshots of the jobs list, a job mid-render and after completion, and the upload section go
to $SCREENSHOT_DIR (default test-artifacts/screenshots/), one per page and width.

(The upload flow and "generate one lesson and watch the bar advance" live in
test_browser_upload.py and test_browser.py.)"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest

from .helpers import PAGE_FITS, ROOT, settle_layout, wait_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "test-artifacts" / "screenshots")
HEIGHTS = {1280: 800, 390: 844}

# Small real lessons: 2 segments of 1 s at 10 fps (one frame is 0.1 s), 160x90.
FPS = 10
SECONDS = 2 * 1.0
SMALL = {"segments": 2, "seconds": 1.0, "fps": FPS}


# The flows at 390 px check the phone layout, which no database or Redis can change.
@pytest.fixture(params=[1280, pytest.param(390, marks=pytest.mark.backend_free)], ids=["1280px", "390px"])
def width(request) -> int:
    return request.param


def new_page(browser, width: int):
    """A page in a fresh context (its own cookies) at this width."""
    context = browser.new_context(viewport={"width": width, "height": HEIGHTS[width]})
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def log_in(page, live_server: str, email: str, password: str, next_url: str = "") -> None:
    page.goto(f"{live_server}/login" + (f"?next={next_url}" if next_url else ""))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}{next_url or '/jobs'}")


def open_menu(page) -> None:
    """On narrow screens the navigation's links are folded behind the Menu button."""
    toggle = page.locator(".menu-toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
        toggle.click()


def assert_fits(page) -> None:
    """The page, once loaded and laid out, does not scroll sideways (checked again for up to 2 s:
    a page still applying its styles may be wider for a moment)."""
    settle_layout(page)
    assert page.evaluate(PAGE_FITS), (
        f"{page.url} scrolls sideways at {page.viewport_size['width']} px: "
        f"scrollWidth {page.evaluate('document.documentElement.scrollWidth')}"
    )


def screenshot(page, name: str, width: int) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=False)


def row(lesson_path: str) -> str:
    return f"tr[data-lesson='{lesson_path}']"


def job_rows(page) -> list[str]:
    return page.locator("table.jobs tbody tr td:first-child a").all_inner_texts()


# --- 1. log in (a wrong password first) and out ----------------------------------------------


def test_log_in_with_a_wrong_password_then_the_right_one_and_log_out(browser, live_server, factory, width):
    user = factory.user("dana@example.com", courses=["Course A"])
    page = new_page(browser, width)
    page.goto(f"{live_server}/jobs")
    assert page.url == f"{live_server}/login?next=/jobs"

    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "not the password")
    page.click("form[action='/login'] button[type=submit]")
    page.get_by_role("alert").filter(has_text="Wrong email or password.").wait_for()
    assert page.url.startswith(f"{live_server}/login")
    assert_fits(page)

    page.fill("input[name=password]", user.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/jobs")
    assert page.locator("h1").inner_text() == "Video jobs"
    assert_fits(page)

    open_menu(page)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server}/login")
    page.get_by_text("You are logged out.").wait_for()
    page.goto(f"{live_server}/jobs")
    assert page.url == f"{live_server}/login?next=/jobs"
    assert_fits(page)
    page.context.close()


# --- 2. the jobs list: search and filters ----------------------------------------------------


def test_search_and_filter_the_jobs_list(app, browser, live_server, factory, work, width):
    user = factory.user("erin@example.com", courses=["Course A"])
    greetings = factory.job("Course A", title="Thai greetings", lessons=1, **SMALL)
    counting = factory.job("Course A", title="Counting to ten", lessons=1, **SMALL)
    factory.job("Course A", title="Polite requests", lessons=1, **SMALL)
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import renders

    with app.app_context():  # one job rendered for real, so the status filter has something to tell apart
        renders.generate(None, db.session.get(VideoJob, uuid.UUID(greetings.id)), greetings.lessons[0])
    work()

    page = new_page(browser, width)
    log_in(page, live_server, user.email, user.password)
    assert sorted(job_rows(page)) == ["Counting to ten", "Polite requests", "Thai greetings"]
    assert page.locator("hgroup p").inner_text() == "3 jobs."
    screenshot(page, "jobs-list", width)

    def apply(q: str = "", status: str = "") -> None:
        page.fill("input[name=q]", q)
        page.select_option("select[name=status]", status)
        with page.expect_navigation():
            page.get_by_role("button", name="Filter").click()

    apply(q="greet")
    assert job_rows(page) == ["Thai greetings"]
    assert page.locator("hgroup p").inner_text() == "1 job matches your filters."
    assert page.input_value("input[name=q]") == "greet"

    apply(q=counting.video_id)
    assert job_rows(page) == ["Counting to ten"]

    apply(status="completed")
    assert job_rows(page) == ["Thai greetings"]
    assert page.locator("table.jobs .badge").all_inner_texts() == ["completed"]
    assert "1 of 1 generated" in page.locator("table.jobs td.generated").inner_text()

    apply(status="not_started")
    assert sorted(job_rows(page)) == ["Counting to ten", "Polite requests"]

    apply(q="greet", status="not_started")
    assert job_rows(page) == []
    page.get_by_text("No jobs match these filters.").wait_for()

    apply()
    assert len(job_rows(page)) == 3
    assert_fits(page)
    page.context.close()


# --- 3. create a job from the "new job" page -------------------------------------------------


def test_create_a_job_from_the_new_job_page(browser, live_server, factory, width):
    user = factory.user("fay@example.com", courses=["Course A"])
    video_id = uuid.uuid4().hex[:11]
    paths = factory.lessons(video_id, 2, course="Course A", **SMALL)
    page = new_page(browser, width)
    log_in(page, live_server, user.email, user.password)

    open_menu(page)
    page.get_by_role("link", name="New job").click()
    page.wait_for_url(f"{live_server}/jobs/new")
    assert_fits(page)
    page.select_option("select[name=course]", label="Course A")
    # A video that is not YouTube's: refused, and the keyboard starts at the message saying why
    # (it was at the top of the page), the fields next.
    page.fill("input[name=video]", "https://vimeo.com/76979871")
    page.get_by_role("button", name="Create job").click()
    page.locator(".form-alert").wait_for()
    # The page's script moves the focus at DOMContentLoaded, which may come just after the alert shows.
    on_alert = "() => document.activeElement.classList.contains('flash-error')"
    assert wait_in_page(page, on_alert, timeout=10, what="the focus on the alert")
    assert page.evaluate("document.activeElement.className").startswith("flash flash-error")
    assert "YouTube" in page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('form') !== null")
    page.fill("input[name=video]", f"https://www.youtube.com/watch?v={video_id}")
    page.fill("input[name=title]", "Market vocabulary")
    page.get_by_role("button", name="Create job").click()

    page.wait_for_url(f"{live_server}/jobs/*-*")
    page.get_by_text("Job created with 2 lessons.").wait_for()
    assert page.locator("h1").inner_text() == "Market vocabulary"
    assert video_id in page.locator("hgroup p").inner_text()
    assert [page.locator(row(path)).count() for path in paths] == [1, 1]
    assert page.locator("tr.lesson").count() == 2
    # The upload section, where a lesson package would come in (test_browser_upload.py uploads).
    page.evaluate("() => document.querySelector('.lesson-files').scrollIntoView({block: 'start'})")
    screenshot(page, "upload", width)
    assert_fits(page)
    page.context.close()


# --- 4. generate all, play, seek, duration; polling stops when idle --------------------------


def test_generate_all_then_play_and_seek_and_polling_stops(browser, live_server, factory, processes, width):
    """With the event stream down (as behind a proxy that drops it) the panel polls while
    renders run, and stops once nothing is active."""
    processes.worker(wait=False)  # starts while the browser logs in
    user = factory.user("gus@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=2, title="Two short lessons", **SMALL)
    page = new_page(browser, width)
    page.route("**/events", lambda route: route.abort())
    status_requests = []
    page.on(
        "request",
        lambda request: "video-generation-status" in request.url and status_requests.append(time.monotonic()),
    )
    log_in(page, live_server, user.email, user.password, f"/jobs/{job.id}")

    page.get_by_role("button", name="Generate all").click()
    page.get_by_text("2 lessons queued or already in progress.").wait_for()
    polling = re.search(r"every (\d+)s", page.get_attribute("#status-panel", "hx-trigger") or "")
    assert polling, "the panel does not poll while renders are queued"
    for path in job.lessons:
        page.locator(f"{row(path)} video").wait_for(timeout=90_000)
    page.locator("#status-panel[data-status='completed']").wait_for()
    done = time.monotonic()
    assert status_requests, "the panel never polled while the renders ran"
    assert "every" not in page.get_attribute("#status-panel", "hx-trigger")
    assert "2 of 2 lessons generated" in page.locator("#status-panel .summary").inner_text()
    assert page.locator(".badge.render-completed").count() == 2
    screenshot(page, "job-completed", width)

    video = f"{row(job.lessons[0])} video"
    duration = wait_in_page(
        page,
        "sel => { const v = document.querySelector(sel); return v.readyState >= 1 && v.duration; }",
        video,
        what="the video's metadata",
    )
    assert abs(duration - SECONDS) <= 1 / FPS, f"video lasts {duration} s, the lesson {SECONDS} s"
    # It plays (muted: headless Chromium's autoplay policy wants a gesture for sound) ...
    page.evaluate(
        "async sel => { const v = document.querySelector(sel); v.muted = true; await v.play(); }", video
    )
    wait_in_page(
        page, "sel => document.querySelector(sel).currentTime > 0.3", video, what="playback to advance"
    )
    # ... and seeks.
    seeked = page.evaluate(
        """sel => new Promise(resolve => {
          const v = document.querySelector(sel);
          v.pause();
          v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
          v.currentTime = 1.5;
        })""",
        video,
    )
    assert abs(seeked - 1.5) <= 1 / FPS
    assert page.evaluate("sel => document.querySelector(sel).error", video) is None

    # Nothing is active: the panel stopped polling. A poll still scheduled would go out within one
    # period of the last (before completion); a timer the page sets past that fires after it, on
    # the page's own clock, so by then its request would have been seen.
    past_a_poll = (int(polling.group(1)) + 0.5 - (time.monotonic() - done)) * 1000
    page.evaluate("ms => new Promise(resolve => setTimeout(resolve, ms))", max(0, past_a_poll))
    assert [t for t in status_requests if t > done] == []
    assert_fits(page)
    page.context.close()


# --- 5. cancel a running render ---------------------------------------------------------------


def test_cancel_a_running_render(browser, live_server, factory, processes, width):
    # Long and large enough to be still rendering when Cancel is pressed (stopped within seconds).
    job = factory.job(
        "Course A", lessons=1, title="A long lesson", segments=3, seconds=30.0, width=1280, height=720, fps=30
    )
    processes.worker(wait=False, RENDER_PRESET="medium")
    user = factory.user("hal@example.com", courses=["Course A"])
    page = new_page(browser, width)
    log_in(page, live_server, user.email, user.password, f"/jobs/{job.id}")
    lesson = row(job.lessons[0])

    page.locator(f"{lesson} button:has-text('Generate')").click()
    wait_in_page(
        page,
        "() => { const p = document.querySelector('.progress-row progress[value]');"
        " return p && p.value > 0; }",
        timeout=60,
        what="frames to be rendered",
    )
    assert "rendering" in page.locator("#status-panel .summary").inner_text()
    assert_fits(page)
    screenshot(page, "job-rendering", width)

    page.evaluate(  # every note shown, however briefly (a fast stop replaces it within a second)
        """() => { window.notesSeen = []; new MutationObserver(() => {
             const note = document.querySelector('#flashes .flash');
             if (note) window.notesSeen.push(note.textContent); })
           .observe(document.getElementById('flashes'), {childList: true, subtree: true}); }"""
    )
    cancel = page.locator(".progress-row").get_by_role("button", name="Cancel")
    cancel.focus()
    cancel.press("Enter")  # from the keyboard: where does it go on from?
    page.locator(f"{lesson} .badge.render-cancelled").wait_for(timeout=30_000)
    assert page.locator(".progress-row").count() == 0
    assert any(note.startswith("Stopping the render") for note in page.evaluate("window.notesSeen"))
    # The note about the stopping render goes once it has stopped (it stayed, no longer true).
    page.locator("#flashes .flash").wait_for(state="detached", timeout=5_000)
    summary = page.locator("#status-panel .summary").inner_text()
    assert "1 render cancelled" in summary and job.lessons[0] in summary, summary
    assert "rendering" not in summary
    assert page.locator(f"{lesson} button", has_text="Retry").is_visible()
    # The keyboard goes on from the lesson's row (it went to the summary, then to the top).
    page.wait_for_timeout(1500)  # a reload or two after the stop
    focused = "() => document.activeElement.closest('tr[data-lesson]')?.dataset.lesson ?? null"
    assert page.evaluate(focused) == job.lessons[0]
    assert_fits(page)
    page.context.close()


# --- 6. retry a failed render ----------------------------------------------------------------


def test_retry_a_failed_render_after_fixing_the_lesson(app, browser, live_server, factory, processes, width):
    user = factory.user("ida@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1, title="A lesson that breaks", **SMALL)
    audio = Path(app.config["LESSONS_ROOT"]) / job.lessons[0] / "audio" / "2.wav"
    kept = audio.read_bytes()
    page = new_page(browser, width)
    log_in(page, live_server, user.email, user.password, f"/jobs/{job.id}")
    lesson = row(job.lessons[0])

    # Queued while no worker runs; the lesson breaks before a worker picks it up.
    page.locator(f"{lesson} button:has-text('Generate')").click()
    page.locator(".progress-row[data-state='queued']").wait_for()
    audio.unlink()
    processes.worker()
    page.locator(f"{lesson} .badge.render-failed").wait_for(timeout=60_000)
    error = page.locator(f"{lesson} small.error").inner_text()
    assert "segment 2, audio" in error and "Traceback" not in error, error
    # The job's own status follows with the panel of the failure's status version: a panel made
    # while the failure was being committed may show the row's new state a moment before it.
    page.locator("#status-panel[data-status='failed']").wait_for(timeout=10_000)
    assert_fits(page)

    audio.write_bytes(kept)
    page.locator(lesson).get_by_role("button", name="Retry").click()
    page.locator(f"{lesson} video").wait_for(timeout=60_000)
    assert page.locator(f"{lesson} .badge").first.inner_text() == "completed"
    assert page.locator(f"{lesson} details.history summary").inner_text() == "2 attempts"
    page.locator("#status-panel[data-status='completed']").wait_for(timeout=10_000)
    assert_fits(page)
    page.context.close()


# --- 7. rename and delete a job --------------------------------------------------------------


def test_rename_and_delete_a_job_from_its_page(browser, live_server, factory, width):
    user = factory.user("jo@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1, title="Old title", **SMALL)
    other = factory.job("Course A", lessons=1, title="Another job", **SMALL)
    page = new_page(browser, width)
    log_in(page, live_server, user.email, user.password, f"/jobs/{job.id}")

    page.get_by_text("Rename or delete this job").click()
    page.fill("input[name=title]", "New title")
    page.get_by_role("button", name="Rename").click()
    page.get_by_text("Job renamed to “New title”.").wait_for()
    assert page.locator("h1").inner_text() == "New title"
    assert_fits(page)

    # Dismissing the confirmation keeps the job (sends nothing) ...
    asked, deletes = [], []
    page.on("request", lambda request: request.url.endswith("/delete") and deletes.append(request.method))
    page.get_by_text("Rename or delete this job").click()
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Delete job").click()
    assert page.url == f"{live_server}/jobs/{job.id}"
    assert asked and "New title" in asked[0] and "lesson folders stay on disk" in asked[0]
    # ... accepting it deletes it: one request, the accepted one.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete job").click()
    page.wait_for_url(f"{live_server}/jobs")
    assert deletes == ["POST"]
    page.get_by_text("Job “New title” deleted").wait_for()
    assert job_rows(page) == [other.title]
    assert page.goto(f"{live_server}/jobs/{job.id}").status == 404
    assert_fits(page)
    page.context.close()


# --- 8. an administrator invites a user ------------------------------------------------------


def test_an_invited_user_sets_a_password_and_sees_only_their_course(browser, live_server, factory, width):
    admin = factory.user("admin@example.com", role="admin", courses=["Course A"])
    own = factory.job("Course A", lessons=1, title="Course A's job", **SMALL)
    factory.job("Course B", lessons=1, title="Course B's job", **SMALL)
    page = new_page(browser, width)
    log_in(page, live_server, admin.email, admin.password)
    assert sorted(job_rows(page)) == ["Course A's job", "Course B's job"]

    open_menu(page)
    page.get_by_role("link", name="Users").click()
    page.wait_for_url(f"{live_server}/admin/users")
    page.fill("input[name=email]", "kim@example.com")
    page.select_option("select[name=role]", label="staff")
    page.get_by_label("Course A").check()
    page.get_by_role("button", name="Invite").click()
    page.get_by_text("kim@example.com is invited.").wait_for()
    link = page.locator("#set-password-link").inner_text().strip()
    assert link.startswith(f"{live_server}/set-password?token=")
    assert "kim@example.com" in page.locator("table.users").inner_text()
    assert_fits(page)

    invitee = new_page(browser, width)  # another browser context: no session of the admin's
    invitee.goto(link)
    invitee.fill("input[name=new_password]", "a new passphrase for kim")
    invitee.fill("input[name=confirm_password]", "a new passphrase for kim")
    assert_fits(invitee)
    invitee.get_by_role("button", name="Set password and log in").click()
    invitee.wait_for_url(f"{live_server}/jobs")
    invitee.get_by_text("Your password is set and you are logged in.").wait_for()
    assert job_rows(invitee) == [own.title]
    open_menu(invitee)
    assert invitee.get_by_role("link", name="Users").count() == 0
    # The link worked once.
    assert invitee.goto(link).status == 404
    assert_fits(invitee)
    invitee.context.close()
    page.context.close()


def test_the_jobs_list_keeps_the_keyboard_where_it_was_as_it_reloads(app, browser, live_server, factory):
    """The list reloads itself (every 3 s while something renders): the job link someone had
    tabbed to lost focus, which went back to the top of the page."""
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import renders

    user = factory.user("keys@example.com", courses=["Course A"])
    busy = factory.job("Course A", title="Busy", lessons=1)
    factory.job("Course A", title="Quiet", lessons=1)
    with app.app_context():
        renders.generate(None, db.session.get(VideoJob, uuid.UUID(busy.id)), busy.lessons[0])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, live_server, user.email, user.password)
    link = page.locator("#jobs-table a", has_text="Quiet")
    link.focus()
    with page.expect_response(lambda r: "/jobs" in r.url and r.request.headers.get("hx-request") == "true"):
        pass  # the table's own reload
    page.wait_for_timeout(300)  # swapped and settled
    assert page.evaluate("document.activeElement.textContent.trim()") == "Quiet"
    page.close()


def test_a_note_about_a_render_goes_when_that_render_has_stopped(app, browser, live_server, factory):
    """ "Stopping the render of …" stayed at the top while the row already said cancelled, for as
    long as any other lesson of the job was still queued or rendering."""
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import lifecycle, renders

    user = factory.user("notes@example.com", courses=["Course A"])
    job = factory.job("Course A", title="Two lessons", lessons=2)
    with app.app_context():
        video_job = db.session.get(VideoJob, uuid.UUID(job.id))
        first = renders.generate(None, video_job, job.lessons[0])
        renders.generate(None, video_job, job.lessons[1])  # stays queued: the job goes on generating
        lifecycle.begin(first.rq_job_id)
        first_id = first.id
    page = new_page(browser, 1280)
    log_in(page, live_server, user.email, user.password, f"/jobs/{job.id}")
    page.locator(f'.progress-row[data-render-id="{first_id}"] button', has_text="Cancel").click()
    note = page.locator("#flashes .flash", has_text="Stopping the render")
    note.wait_for()
    with app.app_context():
        lifecycle.mark_cancelled(first_id)  # as the worker does once it has stopped
    page.evaluate("htmx.trigger('#status-panel', 'status-changed')")
    page.locator(f'.progress-row[data-render-id="{first_id}"]').wait_for(state="detached")
    note.wait_for(state="detached", timeout=5_000)
    assert page.locator("#status-panel .summary .badge").inner_text() == "generating"
    page.context.close()
