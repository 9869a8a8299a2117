"""Accessibility: axe-core (axe-playwright-python) on every page, in Chromium, at a desktop and
a phone width. No serious or critical violation may remain."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

# What these check (layout, accessibility, escaping) no database or Redis can change.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.backend_free]

AXE = Axe()


def _violations(page) -> list[str]:
    results = AXE.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_no_serious_accessibility_violations(app, browser, live_server, factory, width):
    admin = factory.user("admin@example.com", role="admin", courses=["Course A"])
    staff = factory.user("staff@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=2)
    with app.app_context():
        from webapp.models import Role
        from webapp.services import jobs, user_admin

        course = jobs.find_course("Course A")
        course_id = course.id
        _, invite_token = user_admin.invite_user(None, f"new-{width}@example.com", Role.STAFF, [course])
    page = browser.new_page(viewport={"width": width, "height": 900})
    found = {}
    page.goto(f"{live_server}/set-password?token={invite_token}")
    found["/set-password"] = _violations(page)
    page.goto(f"{live_server}/login")
    found["/login"] = _violations(page)
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", admin.password)
    page.click("button[type=submit]")
    paths = ["/jobs", "/jobs/new", f"/jobs/{job.id}", f"/jobs/{job.id}/lessons/1/files", "/account"]
    paths += [f"/jobs/{job.id}/lessons/1/words"]
    paths += ["/account/tokens", "/webhooks", "/docs"]
    paths += ["/jobs/00000000-0000-0000-0000-000000000000"]  # the error page
    paths += ["/admin/users", f"/admin/users/{staff.id}", "/admin/courses", f"/admin/courses/{course_id}"]
    for path in paths:
        page.goto(f"{live_server}{path}")
        found[path] = _violations(page)
    page.close()
    assert {path: v for path, v in found.items() if v} == {}


def _tab_to(page, predicate_js: str, most: int = 120) -> bool:
    """Press Tab until the focused element satisfies predicate_js (a function of the element)."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate(f"(({predicate_js}))(document.activeElement)"):
            return True
    return False


def test_log_in_and_generate_with_the_keyboard_only(app, browser, live_server, factory):
    user = factory.user("keys@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=2)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/login?next=/jobs/{job.id}")
    assert _tab_to(page, "e => e.name === 'email'")
    page.keyboard.type(user.email)
    assert _tab_to(page, "e => e.name === 'password'")
    page.keyboard.type(user.password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#status-panel")
    assert page.locator("#status-announcer").get_attribute("aria-live") == "polite"
    first = job.lessons[0]
    assert _tab_to(
        page,
        f"e => e.tagName === 'BUTTON' && e.textContent.trim() === 'Generate' "
        f"&& e.closest('tr') && e.closest('tr').dataset.lesson === '{first}'",
    )
    page.keyboard.press("Enter")
    page.wait_for_selector(f"tr[data-lesson='{first}'] .badge:has-text('queued')", timeout=10_000)
    page.close()


def test_the_first_tab_skips_to_the_content_and_the_menu_marks_the_page(app, browser, live_server, factory):
    """A keyboard user need not tab through the whole menu on every page; a screen reader hears
    which menu entry is the page it is on."""
    user = factory.user("skip@example.com", courses=["Course A"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/jobs")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    assert page.evaluate("document.activeElement.getBoundingClientRect().width") > 0  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")  # on into the page, not back into the menu
    assert page.evaluate("document.activeElement.closest('header') === null")
    current = page.locator("#site-menu [aria-current=page]")
    assert current.count() == 1 and current.inner_text() == "Jobs"
    page.goto(f"{live_server}/account/tokens")
    assert page.locator("#site-menu [aria-current=page]").inner_text() == "API tokens"
    page.close()


def test_the_panels_reloads_keep_the_focus_and_what_was_opened(app, browser, live_server, factory, work):
    """While a render runs the panel is replaced about once a second: a keyboard user's focus
    stays on the control they were on (it fell to <body>), and an opened list of attempts stays
    open; the live region says the summary when it changes, not the whole panel every second."""
    import uuid

    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import renders

    user = factory.user("focus@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=2)
    with app.app_context():
        renders.generate(None, db.session.get(VideoJob, uuid.UUID(job.id)), job.lessons[0])
    work()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/login?next=/jobs/{job.id}")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")
    row = f"tr[data-lesson='{job.lessons[0]}']"
    page.click(f"{row} details.history summary")
    # Its toggle event comes a moment after the click (a task of its own): static/app.js notes
    # the list as opened then, and a reload swapped in before that would close it.
    page.wait_for_function(
        f'(d => d.open && openLists.has(d.id))(document.querySelector("{row} details.history"))'
    )
    page.focus(f"{row} button:has-text('Generate again')")
    focused = page.evaluate("document.activeElement.id")
    assert focused
    for _ in range(2):
        page.evaluate(
            """() => new Promise(resolve => {
              document.body.addEventListener('htmx:afterSettle', () => resolve(), {once: true});
              htmx.trigger(document.getElementById('status-panel'), 'status-changed');
            })"""
        )
        assert page.evaluate("document.activeElement.id") == focused
        assert page.evaluate(f'document.querySelector("{row} details.history").open') is True
    # An action's answer replaces the panel too: the list stays open, and the focus goes to the
    # row of the lesson whose Generate button it pressed (that button is gone: it renders).
    other = f"tr[data-lesson='{job.lessons[1]}']"
    page.focus(f"{other} button:has-text('Generate')")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{other} .badge:has-text('queued')")
    page.wait_for_timeout(300)  # settled
    assert page.evaluate(f'document.querySelector("{row} details.history").open') is True
    assert page.evaluate(f'!!document.activeElement.closest("{other}")'), page.evaluate(
        "document.activeElement.outerHTML.slice(0, 120)"
    )
    assert page.get_attribute("#status-panel", "aria-live") is None
    assert page.locator("#status-announcer[aria-live=polite]").count() == 1
    page.close()
