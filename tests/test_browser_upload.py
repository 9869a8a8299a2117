"""Uploading a lesson package in a real browser (Chromium through Playwright): the progress bar,
the lessons list refreshed when it lands, and a hostile package shown as an error."""

from __future__ import annotations

import threading
import time

import pytest

from .test_uploads import lesson_files, make_zip, package

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _log_in(page, live_server: str, user, next_url: str) -> None:
    page.goto(f"{live_server}/login?next={next_url}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")


# At 390 px it checks the phone layout, which no database or Redis can change.
@pytest.mark.parametrize("width", [1280, pytest.param(390, marks=pytest.mark.backend_free)])
def test_upload_a_package_from_the_job_page(app, browser, live_server, factory, tmp_path, width):
    user = factory.user("carol@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=0)
    good = tmp_path / "lessons.zip"
    # A few MB of noise, so the upload takes long enough to report progress.
    files = {**lesson_files(tmp_path, "Browser one"), "noise.bin": bytes(range(256)) * 16384}
    good.write_bytes(package(lesson_1=files, lesson_2=lesson_files(tmp_path, "Browser two")))
    hostile = tmp_path / "hostile.zip"
    hostile.write_bytes(make_zip({"lesson_1/../../escape.txt": b"x"}))

    page = browser.new_page(viewport={"width": width, "height": 900})
    page.add_init_script(
        """window.progressEvents = 0;
        document.addEventListener('htmx:xhr:progress', () => { window.progressEvents += 1; });"""
    )
    _log_in(page, live_server, user, f"/jobs/{job.id}")
    assert page.locator("tr.lesson").count() == 0
    assert page.locator("#job-discovery").inner_text().startswith("No lesson folder")
    assert page.locator("#lesson-package").is_hidden()

    page.set_input_files("input[name=package]", str(good))
    page.click(".upload-form button[type=submit]")
    page.wait_for_selector("text=Uploaded 2 lessons: lesson_1, lesson_2.", timeout=20_000)
    assert page.locator("tr.lesson").count() == 2
    # The notes outside the panel follow the upload: the "no lesson folder" warning goes (it
    # stayed until a reload) and the package can be downloaded at once.
    assert page.locator("#job-discovery").inner_text() == ""
    assert page.locator("#lesson-package a").is_visible()
    assert "Browser two" in page.locator("tr.lesson").nth(1).inner_text()
    assert page.evaluate("window.progressEvents") > 0
    assert page.locator(".upload-progress").is_hidden()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.set_input_files("input[name=package]", str(hostile))
    page.click(".upload-form button[type=submit]")
    page.wait_for_selector("text=paths with “..” are not allowed", timeout=20_000)
    assert page.locator("tr.lesson").count() == 2
    assert not (tmp_path / "escape.txt").exists()
    page.close()


def test_an_upload_refused_before_it_is_read_says_why(app, browser, live_server, factory, tmp_path):
    """A refusal decided before the body is read (here: the disk is too full) shows the server's
    own sentence under the form, not a bare status code."""
    user = factory.user("dana@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=0)
    good = tmp_path / "lessons.zip"
    good.write_bytes(package(lesson_1=lesson_files(tmp_path, "Refused")))
    app.config["UPLOAD_DISK_RESERVE_BYTES"] = 1 << 60

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _log_in(page, live_server, user, f"/jobs/{job.id}")
    page.set_input_files("input[name=package]", str(good))
    page.click(".upload-form button[type=submit]")
    error = page.locator(".upload-error")
    error.wait_for(state="visible", timeout=20_000)
    assert error.inner_text() == (
        "The server does not have enough disk space for this upload right now. Try again later."
    )
    assert page.locator(".upload-progress").is_hidden()
    assert page.locator("tr.lesson").count() == 0
    page.close()


def test_an_upload_keeps_the_players(app, browser, live_server, factory, work, tmp_path):
    """Uploading new files for a lesson leaves the lessons' players where they are."""
    from .helpers import bearer

    user = factory.user("erin@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=2, segments=1, seconds=1.0, fps=10)
    client = app.test_client()
    token = bearer(factory.token(user.email))
    for path in job.lessons:
        queued = client.post(
            "/video-transform/generate-video", json={"jobId": job.id, "lessonPath": path}, headers=token
        )
        assert queued.status_code == 202
    work()
    good = tmp_path / "lesson.zip"
    good.write_bytes(package(lesson_1=lesson_files(tmp_path, "Changed")))

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _log_in(page, live_server, user, f"/jobs/{job.id}")
    assert page.locator("tr.lesson video").count() == 2

    # A reload of the panel (asked for by a status event) is under way when the upload's answer
    # replaces the panel, and its own answer comes while the new panel settles: htmx swapped it
    # into the old panel, out of the page, and its hx-preserve step took every player with it
    # (seen 2 times in 3 after uploads on a real server). The window is htmx's settle delay
    # (20 ms), widened here so the order is certain: the reload is answered 1.5 s after it is
    # asked for, the upload well before that, and the new panel settles for 4 s.
    slow = threading.Event()
    inner = app.wsgi_app

    def slow_reload(environ, start_response):
        if environ["PATH_INFO"].endswith("/video-generation-status") and slow.is_set():
            slow.clear()
            time.sleep(1.5)
        return inner(environ, start_response)

    app.wsgi_app = slow_reload
    try:
        page.set_input_files("input[name=package]", str(good))
        page.fill("input[name=lesson]", "2")
        page.evaluate("htmx.config.defaultSettleDelay = 4000")
        slow.set()
        page.evaluate("htmx.trigger(document.getElementById('status-panel'), 'status-changed')")
        page.click(".upload-form button[type=submit]")
        page.wait_for_selector("#flashes >> text=Uploaded 1 lesson: lesson_2.", timeout=20_000)
        assert not slow.is_set()  # the slow reload was asked for
        page.wait_for_timeout(3000)  # it has been answered, within the settle delay
        page.evaluate("htmx.config.defaultSettleDelay = 20")
    finally:
        app.wsgi_app = inner
    assert page.locator("#status-panel tr.lesson video").count() == 2
    assert page.locator("tr.lesson").nth(1).locator("text=Changed").count() == 1
    # The sentence is said beside the form too, not only at the page's top.
    assert page.locator(".upload-done").inner_text() == "Uploaded 1 lesson: lesson_2."
    page.close()


def test_a_refused_package_is_said_beside_the_form_which_keeps_its_input(
    app, browser, live_server, factory, tmp_path
):
    """The sentence under the form (where the user is, 2,800 px below the page's messages on a
    phone), with the focus on it; the chosen file and lesson number stay for a second try."""
    user = factory.user("fred@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(package(lesson_1={"lesson.json": b"{ not json"}))
    page = browser.new_page(viewport={"width": 390, "height": 844})
    _log_in(page, live_server, user, f"/jobs/{job.id}")
    page.set_input_files("input[name=package]", str(bad))
    page.fill("input[name=lesson]", "1")
    page.click(".upload-form button[type=submit]")
    error = page.locator(".upload-error")
    error.wait_for(state="visible", timeout=20_000)
    assert "lesson.json" in error.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('upload-error')")
    assert page.input_value("input[name=lesson]") == "1"
    assert page.evaluate("document.querySelector('input[name=package]').files.length") == 1
    assert page.locator(".upload-done").is_hidden()
    page.close()


@pytest.mark.parametrize("width", [1280, pytest.param(390, marks=pytest.mark.backend_free)])
def test_replace_a_lesson_file_from_its_files_page(app, browser, live_server, factory, tmp_path, width):
    """From the job page to a lesson's files, a narration recorded again put in place of the old
    one: the page says the lesson checks out and its new length; on a phone nothing spills over."""
    from webapp.render.sample import write_tone

    user = factory.user("erin@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    recording = write_tone(tmp_path / "New Recording.m4a", 2.0, 330.0, fmt="m4a")

    page = browser.new_page(viewport={"width": width, "height": 900})
    page.add_init_script(
        """window.progressEvents = 0;
        document.addEventListener('htmx:xhr:progress', () => { window.progressEvents += 1; });"""
    )
    _log_in(page, live_server, user, f"/jobs/{job.id}")
    page.get_by_role("link", name="Replace or add files of lesson 1").click()
    page.wait_for_selector("h1:text('Files of lesson 1')")
    row = page.locator("table.files tr", has=page.locator("code", has_text="audio/1.wav"))
    assert "segment 1's narration" in row.inner_text()
    assert (
        row.locator("input[type=file]").get_attribute("accept") == "audio/*,.m4a"
    )  # a phone offers recordings
    row.locator("input[type=file]").set_input_files(str(recording))
    row.get_by_role("button", name="Replace").click()
    page.wait_for_selector("text=Replaced audio/1.wav. The lesson checks out", timeout=20_000)
    assert page.evaluate("window.progressEvents") > 0  # sent by htmx, its progress shown in the row
    assert page.evaluate("document.activeElement.textContent").startswith("Replaced audio/1.wav.")
    assert "0:02" in page.locator("hgroup").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name=job.title).click()
    assert "0:02" in page.locator("tr.lesson").first.inner_text()
    page.close()


@pytest.mark.parametrize("width", [1280, pytest.param(390, marks=pytest.mark.backend_free)])
def test_fix_a_caption_from_the_lessons_words_page(app, browser, live_server, factory, width):
    """From the job page to a lesson's words, a caption typed for a segment and saved: the page
    says so and shows it; the field keeps a Thai title whole; on a phone nothing spills over and
    Save stays in reach at the bottom of the screen."""
    import json
    from pathlib import Path

    user = factory.user("erin@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1, segments=2)
    page = browser.new_page(viewport={"width": width, "height": 900})
    _log_in(page, live_server, user, f"/jobs/{job.id}")
    page.get_by_role("link", name="Edit the words of lesson 1").click()
    page.wait_for_selector("h1:text('Words of lesson 1')")
    assert page.get_by_label("Title").nth(1).input_value() == "สวัสดีครับ"  # segment 1's, after the lesson's
    save = page.get_by_role("button", name="Save", exact=True)
    box = save.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900  # sticky: in reach before scrolling
    caption = page.locator("#segment-2").get_by_label("Caption")
    caption.fill("ปี่ ฟ้า น้ำ ป่า — four words,\nfour tones")
    save.click()
    page.wait_for_selector("text=Saved. Generate the lesson's video to show")
    assert (
        page.locator("#segment-2").get_by_label("Caption").input_value()
        == "ปี่ ฟ้า น้ำ ป่า — four words,\nfour tones"
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    manifest = Path(app.config["LESSONS_ROOT"]) / job.lessons[0] / "lesson.json"
    assert (
        json.loads(manifest.read_text())["segments"][1]["caption"] == "ปี่ ฟ้า น้ำ ป่า — four words,\nfour tones"
    )
    assert page.evaluate("document.activeElement.id") == "segment-2"  # back where the edit was

    # A refusal: the keyboard starts at what is wrong, the field at fault is marked, the edit kept.
    page.get_by_label("Captions’ language").fill("thai language")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector("#refusal")
    assert page.evaluate("document.activeElement.id") == "refusal"
    assert page.get_by_label("Captions’ language").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Captions’ language").input_value() == "thai language"

    # Edits not saved are not left behind without a question.
    page.get_by_label("Captions’ language").fill("th")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.get_by_role("link", name="Jobs", exact=True).first.click()
    page.wait_for_timeout(300)
    assert asked == ["beforeunload"] and "/words" in page.url
    page.close()


def test_a_lesson_file_over_the_cap_is_refused_in_its_row_before_it_is_sent(
    app, browser, live_server, factory, tmp_path
):
    from webapp.render.sample import write_tone

    user = factory.user("erin@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    recording = write_tone(tmp_path / "long.wav", 3.0, 330.0)
    app.config["UPLOAD_MAX_BYTES"] = 100 * 1024
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda request: requests.append(request.method))
    _log_in(page, live_server, user, f"/jobs/{job.id}/lessons/1/files")
    requests.clear()
    row = page.locator("table.files tr", has=page.locator("code", has_text="audio/1.wav"))
    row.locator("input[type=file]").set_input_files(str(recording))
    row.get_by_role("button", name="Replace").click()
    error = row.locator(".upload-error")
    error.wait_for(state="visible")
    assert error.inner_text() == "This file is larger than the 100.0 KB a lesson file may have."
    assert "POST" not in requests
    page.close()


def test_the_words_page_comes_back_by_itself_when_the_render_ends(app, browser, live_server, factory, client):
    """While the lesson renders its fields and Save are disabled; they came back only with a
    reload by hand, with nothing saying so."""
    from .helpers import bearer

    user = factory.user("erin@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    headers = bearer(factory.token(user.email))
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": "v.mp4"}
    queued = client.post("/video-transform/generate-video", json=body, headers=headers)
    assert queued.status_code == 202
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _log_in(page, live_server, user, f"/jobs/{job.id}/lessons/1/words")
    save = page.get_by_role("button", name="Save", exact=True)
    assert save.is_disabled() and "comes back by itself" in page.locator(".form-actions").inner_text()
    render_id = queued.json["renderId"]
    assert client.post(f"/api/renders/{render_id}/cancel", headers=headers).status_code in (200, 202)
    page.locator(".form-actions button:not([disabled])").first.wait_for(timeout=15_000)
    assert page.get_by_label("Captions’ language").is_enabled()
    page.close()
