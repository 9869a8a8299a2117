"""Uploading a lesson package in a real browser (Chromium through Playwright): the progress bar,
the lessons list refreshed when it lands, and a hostile package shown as an error."""

from __future__ import annotations

import pytest

from .test_uploads import lesson_files, make_zip, package

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("width", [1280, 390])
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
    page.goto(f"{live_server}/login?next=/jobs/{job.id}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")
    assert page.locator("tr.lesson").count() == 0

    page.set_input_files("input[name=package]", str(good))
    page.click(".upload-form button[type=submit]")
    page.wait_for_selector("text=Uploaded 2 lessons: lesson_1, lesson_2.", timeout=20_000)
    assert page.locator("tr.lesson").count() == 2
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
    page.goto(f"{live_server}/login?next=/jobs/{job.id}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")
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
