"""Phones: every page at 390 and 360 px wide in Chromium, with no sideways scroll; the lessons
table as stacked rows, the player as wide as the screen, the menu folded behind a button that
the keyboard works; buttons on one line. And the Copy buttons."""

from __future__ import annotations

import itertools
import math
import re
import uuid

import pytest

from .helpers import settle_layout, wait_in_page

# What these check (layout, accessibility, escaping) no database or Redis can change.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.backend_free]

# Elements wider than the window, named for the failure message (evaluated in the page).
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 0.5) {
      const css = typeof el.className === 'string' ? el.className.trim().replace(/\\s+/g, '.') : '';
      wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (css ? '.' + css : '') +
        ' right=' + Math.round(box.right));
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wide: wide.slice(0, 8)};
}"""

# Visible buttons whose label takes more than one line.
WRAPPED_BUTTONS = """() => {
  const wrapped = [];
  for (const el of document.querySelectorAll('button, [role=button], input[type=submit]')) {
    if (!el.offsetParent || !el.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (tops.size > 1) wrapped.push(el.textContent.trim());
  }
  return wrapped;
}"""


@pytest.fixture
def site(app, factory, work):
    """An administrator, a job with a rendered lesson (a video on its page), a webhook-free
    course, and a long unbroken title to stress the layout."""
    admin = factory.user("admin@example.com", role="admin", courses=["Course A"])
    job = factory.job(
        "Course A",
        lessons=2,
        title="Greetings-and-introductions-in-polite-Thai-for-absolute-beginners",
        seconds=1.7,
    )
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import renders

    with app.app_context():
        renders.generate(None, db.session.get(VideoJob, __import__("uuid").UUID(job.id)), job.lessons[0])
    work()
    return admin, job


def _log_in(page, live_server, user) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/jobs")


def _assert_fits(page, where: str) -> None:
    settle_layout(page)
    found = page.evaluate(OVERFLOW)
    assert found["scrollWidth"] <= found["innerWidth"], f"{where} scrolls sideways: {found}"
    assert page.evaluate(WRAPPED_BUTTONS) == [], f"{where}: a button's label wraps"


def _wait_for_metadata(page, selector: str) -> float:
    return wait_in_page(
        page,
        "s => { const v = document.querySelector(s); return v && v.readyState >= 1 ? v.duration : 0; }",
        selector,
        timeout=10,
        what=f"the metadata of {selector}",
    )


@pytest.mark.parametrize("width", [390, 360])
def test_every_page_fits_a_phone(browser, live_server, site, width):
    admin, job = site
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(f"{live_server}/login")
    _assert_fits(page, "/login")
    _log_in(page, live_server, admin)

    # The menu: folded behind its button, which the keyboard opens and Escape closes.
    toggle = page.locator(".menu-toggle")
    assert toggle.is_visible() and not page.locator("#site-menu").is_visible()
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true" and page.locator("#site-menu").is_visible()
    _assert_fits(page, "the open menu")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#site-menu') !== null")
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false" and not page.locator("#site-menu").is_visible()
    assert page.evaluate("document.activeElement.classList.contains('menu-toggle')")

    paths = ["/jobs", "/jobs/new", f"/jobs/{job.id}", "/account", "/account/tokens", "/webhooks", "/docs"]
    paths += ["/admin/users", "/admin/courses", "/jobs/00000000-0000-0000-0000-000000000000"]
    for path in paths:
        page.goto(f"{live_server}{path}")
        _assert_fits(page, path)

    # A new token, shown once, fits too.
    page.goto(f"{live_server}/account/tokens")
    page.fill("input[name=name]", "LMS sync")
    page.click("form[action='/account/tokens'] button[type=submit]")
    page.wait_for_selector("#new-token")
    _assert_fits(page, "/account/tokens with a new token")

    # The job page: the lessons table as stacked rows, the player as wide as its row.
    page.goto(f"{live_server}/jobs/{job.id}")
    row = f"tr[data-lesson='{job.lessons[0]}']"
    # The column heads stay for screen readers only.
    assert page.evaluate("document.querySelector('table.lessons thead').getBoundingClientRect().height") <= 1
    # Measured in one go: the status panel may reload itself (an event) between two calls.
    tops = page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(td => {
             const r = td.getBoundingClientRect();
             return {x: r.x, y: r.y, width: r.width, height: r.height}; })""",
        f"{row} td",
    )
    assert all(b["x"] == tops[0]["x"] for b in tops), "cells side by side"
    assert all(b["y"] >= a["y"] + a["height"] - 1 for a, b in itertools.pairwise(tops)), "cells overlap"
    label = page.evaluate(
        "sel => getComputedStyle(document.querySelector(sel), '::before').content", f"{row} td.duration"
    )
    assert label == '"Duration: "'  # each stacked cell says which column it is
    video = page.locator(f"{row} video").bounding_box()
    assert video["width"] >= tops[0]["width"] - 1 and video["width"] >= width * 0.8
    # The table and the player say the same duration (whole seconds, cut as players cut them).
    seconds = _wait_for_metadata(page, f"{row} video")
    shown = page.locator(f"{row} td.duration").inner_text()
    assert shown == f"{math.floor(seconds) // 60}:{math.floor(seconds) % 60:02d}" == "0:01"
    _assert_fits(page, "the job page with its video")
    page.close()


def test_the_menu_is_a_row_of_links_on_a_desktop(browser, live_server, site):
    admin, _ = site
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _log_in(page, live_server, admin)
    assert not page.locator(".menu-toggle").is_visible()
    links = page.locator("#site-menu > li")
    assert links.count() >= 8 and links.first.is_visible()
    boxes = [links.nth(i).bounding_box() for i in range(links.count())]
    assert all(b["y"] < boxes[0]["y"] + boxes[0]["height"] for b in boxes), "the menu wraps on a desktop"
    _assert_fits(page, "/jobs at 1280 px")
    page.close()


def test_copy_buttons_copy_and_say_so(browser, live_server, site):
    admin, _ = site
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    _log_in(page, live_server, admin)
    page.goto(f"{live_server}/account/tokens")
    page.fill("input[name=name]", "LMS sync")
    page.click("form[action='/account/tokens'] button[type=submit]")
    page.wait_for_load_state("load")  # the copy button works once app.js has run, as for a person
    token = page.locator("#new-token").inner_text()
    assert token.startswith("lvt_")
    button = page.locator("button[data-copy='#new-token']")
    button.click()
    page.wait_for_selector("button[data-copy='#new-token'][data-copy-state='copied']")
    assert button.inner_text() == "Copied"
    assert page.evaluate("navigator.clipboard.readText()") == token
    page.wait_for_selector("button[data-copy='#new-token']:not([data-copy-state])", timeout=5000)
    assert button.inner_text() == "Copy"

    # A webhook's signing secret, shown once, has its Copy button too (so do set-password links).
    page.goto(f"{live_server}/webhooks")
    page.fill("input[name=url]", "https://1.1.1.1/hooks")
    page.click("form[action='/webhooks'] button[type=submit]")
    page.wait_for_load_state("load")
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("whsec_")
    page.click("button[data-copy='#new-secret']")
    page.wait_for_selector("button[data-copy='#new-secret'][data-copy-state='copied']")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.goto(f"{live_server}/docs")
    example = page.locator(".code-block").filter(has_text="generate-video").first
    example.locator("button.copy").click()
    example.locator("button.copy[data-copy-state='copied']").wait_for()
    assert example.locator("button.copy").inner_text() == "Copied"
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl -s -X POST") and re.search(r'"lessonPath": "henIVlCPVIY/lesson_1"', copied)
    assert copied == example.locator("code").inner_text().strip()
    context.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_long_unbroken_names_never_push_a_page_sideways(app, browser, live_server, factory, width):
    """Names at their length limits without a space (a title, a course, an email, a token's
    name) wrap inside their cells and headings instead of widening the page."""
    course = "Course" + "X" * 110
    admin = factory.user("admin@example.com", role="admin", courses=[course])
    factory.user("a" * 60 + "@" + "b" * 60 + ".example.com", courses=[course])
    job = factory.job(course, lessons=1, title="T" * 200)
    factory.token(admin.email, name="N" * 100)
    page = browser.new_page(viewport={"width": width, "height": 800})
    _log_in(page, live_server, admin)
    for path in [
        "/jobs",
        f"/jobs/{job.id}",
        "/account/tokens",
        "/admin/users",
        "/admin/courses",
        "/webhooks",
    ]:
        page.goto(f"{live_server}{path}")
        _assert_fits(page, f"{path} at {width}")
    page.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_the_queue_dashboard_reads_on_a_phone(browser, live_server, site, width):
    """rq-dashboard's intros have a fixed height: on a phone their text ran on under the table
    below. Its pages get our small stylesheet, so each intro ends before what follows it."""
    admin, _ = site
    page = browser.new_page(viewport={"width": width, "height": 800})
    _log_in(page, live_server, admin)
    for path in ("/rq/", "/rq/0/view/workers", "/rq/0/view/jobs"):
        page.goto(f"{live_server}{path}")
        page.wait_for_selector("table tbody tr")  # the dashboard's own script has filled it in
        settle_layout(page)
        found = page.evaluate(
            """() => [...document.querySelectorAll('p.intro')].map(p => {
                 const next = p.nextElementSibling, box = p.getBoundingClientRect();
                 return {overflows: p.scrollHeight > p.clientHeight + 1,
                         gap: next ? next.getBoundingClientRect().top - box.bottom : 0};
               })"""
        )
        assert found, f"{path}: no intro (another dashboard version?)"
        for intro in found:
            assert not intro["overflows"] and intro["gap"] >= 0, f"{path}: an intro runs under the table"
        scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll[0] <= scroll[1], f"{path} scrolls sideways"
    page.close()


# Text that breaks inside a word: the elements (matching a selector) whose text's line boxes
# start on more than one line although it is a single word ("Dur/atio/n", "0:0/7", "1/0").
BROKEN_WORDS = """sel => {
  const broken = [];
  for (const el of document.querySelectorAll(sel)) {
    const text = el.textContent.trim();
    if (!el.offsetParent || !text || /\\s/.test(text)) continue;
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (tops.size > 1) broken.push(text);
  }
  return broken;
}"""

# Visible controls shorter than 44 px (what a fingertip needs), named.
SMALL_TARGETS = """sel => {
  const small = [];
  for (const el of document.querySelectorAll(sel)) {
    const box = el.getBoundingClientRect();
    if (!el.offsetParent || !box.width) continue;
    const name = (el.textContent || el.value || '').trim().slice(0, 30);
    if (box.height < 43.5) small.push(name + ' ' + Math.round(box.height));
  }
  return small;
}"""


def test_tables_keep_words_whole_and_controls_fit_a_finger(app, browser, live_server, site, client, work):
    """Beside a wide player, the lessons table's column names, numbers and durations stay whole
    at 1280 px; on a phone the webhook log is stacked rows (it was one letter per line) and the
    job page's buttons and links are at least 44 px tall; the status badges pass contrast."""
    from axe_playwright_python.sync_playwright import Axe

    from webapp.extensions import db
    from webapp.models import Course, User, Webhook
    from webapp.models import VideoJob as VideoJobModel
    from webapp.services import webhooks

    admin, job = site
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_INTERVALS=[0])
    with app.app_context():
        course = db.session.scalars(db.select(Course).where(Course.name == "Course A")).one()
        user = db.session.get(User, admin.id)
        hook = webhooks.create(user, course, "http://127.0.0.1:9/hooks", None)
        webhooks.send_test(db.session.get(Webhook, hook.id))
    work()

    # A broken lesson beside it: its hint to fix the files must wrap, not widen its column.
    from pathlib import Path

    from webapp.services import jobs

    (Path(app.config["LESSONS_ROOT"]) / job.lessons[1] / "lesson.json").write_text('{"segments": []}')
    with app.app_context():
        jobs.rescan_lessons(
            db.session.get(VideoJobModel, uuid.UUID(job.id)), Path(app.config["LESSONS_ROOT"])
        )

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _log_in(page, live_server, admin)
    page.goto(f"{live_server}/jobs/{job.id}")
    page.locator("tr.lesson video").first.wait_for()
    assert page.locator("tr.lesson small", has_text="Fix its files").count() == 1
    assert page.locator("tr.lesson video").first.bounding_box()["width"] >= 320  # not a thumbnail
    assert page.evaluate("document.querySelector('table.lessons').getBoundingClientRect().right") <= 1280
    assert (
        page.evaluate(BROKEN_WORDS, "table.lessons th, table.lessons td.number, table.lessons td.duration")
        == []
    )
    contrast = Axe().run(page, options={"runOnly": ["color-contrast"]}).response["violations"]
    assert contrast == [], [node["target"] for v in contrast for node in v["nodes"]]

    page.set_viewport_size({"width": 390, "height": 844})
    settle_layout(page)
    assert page.evaluate(SMALL_TARGETS, "#status-panel button, .player a, .lesson-files button") == []
    page.goto(f"{live_server}/webhooks")
    answer = page.locator("table.deliveries td[data-label='Answer']").first
    assert answer.is_visible() and answer.bounding_box()["width"] > 300
    assert "Connection refused" in answer.inner_text()
    assert page.evaluate(BROKEN_WORDS, "table.deliveries th, table.deliveries td.number") == []
    _assert_fits(page, "/webhooks")
    page.close()


def test_ids_stay_whole_in_desktop_tables(app, browser, live_server, site, factory):
    """At 1280 px the jobs list broke video ids mid-word ("Ab3dE/fGh1") and the tokens list their
    prefixes, though the page had room: any cell may break anywhere, so that a phone never
    scrolls sideways, and the table shrank those columns first. On a phone they stay whole too."""
    admin, _ = site
    for n in range(3):
        factory.job("Course A", lessons=1, title=f"Job-with-a-long-unbroken-title-number-{n}-for-the-list")
        factory.token(admin.email, name=f"Synchronisation-of-the-learning-management-system-{n}")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _log_in(page, live_server, admin)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 800})
        for path, cells in (("/jobs", "table.jobs td code"), ("/account/tokens", "table.tokens td code")):
            page.goto(f"{live_server}{path}")
            assert page.locator(cells).count() >= 3
            assert page.evaluate(BROKEN_WORDS, cells) == [], f"{path} at {width} px"
            _assert_fits(page, f"{path} at {width} px")
    page.close()


def test_every_control_on_a_phone_fits_a_finger(app, browser, live_server, site, factory):
    """At 390 px the menu's links were 40 px tall, the event and course checkboxes' labels 30 px,
    the jobs list's "Older →" 24 px: under the 44 px a fingertip needs (WCAG 2.5.5)."""
    admin, _ = site
    app.config["JOBS_PER_PAGE"] = 1
    factory.job("Course A", lessons=1)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{live_server}/login")
    assert page.evaluate(SMALL_TARGETS, "form label:has(input[type=checkbox])") == []
    _log_in(page, live_server, admin)
    page.locator(".menu-toggle").click()
    assert page.evaluate(SMALL_TARGETS, "#site-menu a, #site-menu button") == []
    assert page.evaluate(SMALL_TARGETS, "nav[aria-label=Pages] a, .pagination a") == []
    page.goto(f"{live_server}/jobs?page=1")
    assert page.locator("a[rel=next]").is_visible()
    assert page.evaluate(SMALL_TARGETS, "a[rel=next], a[rel=prev]") == []
    for path in ("/webhooks", "/admin/users"):
        page.goto(f"{live_server}{path}")
        assert page.locator("form label:has(input[type=checkbox])").count() >= 1
        assert page.evaluate(SMALL_TARGETS, "form label:has(input[type=checkbox])") == [], path
    # The brand link and a breadcrumb's links (40 px), the API docs' contents (24-30 px).
    page.goto(f"{live_server}/admin/users/{admin.id}")
    assert page.evaluate(SMALL_TARGETS, "a.brand, nav[aria-label=breadcrumb] a") == []
    page.goto(f"{live_server}/docs")
    assert page.locator("nav.toc a").count() > 5
    assert page.evaluate(SMALL_TARGETS, "nav.toc a") == []
    page.close()


# Forms of one field and a button (form.actions) whose button sits under the field, not beside it.
BUTTON_BELOW = """() => {
  const below = [];
  for (const form of document.querySelectorAll('form.actions')) {
    const field = form.querySelector('input:not([type=hidden]), select');
    const button = form.querySelector('button');
    if (!form.offsetParent || !field || !button) continue;
    if (Math.abs(button.getBoundingClientRect().top - field.getBoundingClientRect().top) > 4)
      below.push(button.textContent.trim());
  }
  return below;
}"""


def test_a_short_form_keeps_its_button_beside_its_field_on_a_desktop(browser, live_server, site, factory):
    """At 1280 px "Rename", "Set role", "Create course" and "Add member" were full-width bars under
    a short field; beside it they read as one line of form. On a phone they may go under it."""
    admin, _ = site
    other = factory.user("other@example.com", courses=["Course B"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _log_in(page, live_server, admin)
    page.goto(f"{live_server}/admin/courses")
    course_page = page.locator("a", has_text="Course A").first.get_attribute("href")
    for path in ("/admin/courses", course_page, f"/admin/users/{other.id}"):
        page.goto(f"{live_server}{path}")
        assert page.locator("form.actions").count() >= 1
        assert page.evaluate(BUTTON_BELOW) == [], path
        assert page.evaluate(WRAPPED_BUTTONS) == [], path
    page.close()


def test_a_chapter_button_keeps_the_keyboard_through_a_reload(app, browser, live_server, site):
    """The panel reloads while another lesson renders: the chapter button someone had tabbed to
    was built again after the reload, without the focus, which went to the top of the page."""
    admin, job = site
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _log_in(page, live_server, admin)
    page.goto(f"{live_server}/jobs/{job.id}")
    chapter = page.locator("nav.chapters button").first
    chapter.wait_for()
    chapter.focus()
    before = page.evaluate("document.activeElement.id")
    assert before
    page.evaluate("htmx.trigger('#status-panel', 'status-changed')")  # as the job's event stream does
    page.wait_for_function("() => !document.querySelector('#status-panel.htmx-request')")
    page.wait_for_timeout(800)  # the chapters track loads, the buttons are built again
    assert page.evaluate("document.activeElement.id") == before
    page.close()


@pytest.mark.backend_free
def test_a_copy_the_browser_refuses_leaves_the_text_selected_and_says_so(browser, live_server, site):
    """Without the clipboard (a browser that refuses it), the token is selected for the person to
    copy themselves, and the button says so in words that fit a phone too (it said "Press
    Ctrl+C")."""
    admin, _ = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    refuse = "{value: {writeText: () => Promise.reject(new Error('refused'))}}"
    page.add_init_script(f"Object.defineProperty(navigator, 'clipboard', {refuse})")
    _log_in(page, live_server, admin)
    page.goto(f"{live_server}/account/tokens")
    page.fill("input[name=name]", "Phone")
    page.click("form[action='/account/tokens'] button[type=submit]")
    page.wait_for_load_state("load")
    token = page.locator("#new-token").inner_text()
    page.tap("button[data-copy='#new-token']")
    page.wait_for_selector("button[data-copy='#new-token'][data-copy-state='failed']")
    assert page.locator("button[data-copy='#new-token']").inner_text() == "Selected: copy it"
    assert page.evaluate("window.getSelection().toString().trim()") == token
    context.close()
