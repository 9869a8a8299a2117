"""A real browser (Chromium through Playwright) against a live server and a real worker."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest

from webapp import status_channel
from webapp.services import demo

from .helpers import wait_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("stream", ["pushed", "blocked"])
def test_generate_in_the_browser_and_play_the_video(app, browser, live_server, processes, stream):
    """With the event stream the panel reloads when told to; with the stream blocked (a proxy
    that drops it), it falls back to polling. Either way the user sees the same."""
    with app.app_context():
        login = demo.ensure_demo(app)
    # A slower encoder preset makes the 30 s demo lesson take several seconds, long enough to watch.
    processes.worker(RENDER_PRESET="medium")
    page = browser.new_page()
    if stream == "blocked":
        page.route("**/events", lambda route: route.abort())
    page.add_init_script(
        """window.streamOpened = false; window.polls = 0;
        document.addEventListener('htmx:sseOpen', () => { window.streamOpened = true; });
        document.addEventListener('htmx:beforeSend', (e) => {
          if (!e.detail.requestConfig.triggeringEvent) window.polls += 1; });"""
    )
    # Everything below runs under our Content-Security-Policy (no inline script, no eval).
    blocked = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and blocked.append(msg.text))
    page.goto(f"{live_server}/jobs")
    assert page.url.startswith(f"{live_server}/login")
    page.fill("input[name=email]", login["email"])
    page.fill("input[name=password]", login["password"])
    page.click("button[type=submit]")
    page.click(f"a[href='/jobs/{login['jobId']}']")
    assert page.locator("h1").inner_text() == demo.DEMO_TITLE

    row = "tr[data-lesson='henIVlCPVIY/lesson_3']"
    page.click(f"{row} button:has-text('Generate')")
    page.wait_for_selector(".progress-row", timeout=10_000)
    # Record the progress bar each time htmx swaps the panel in, until the video shows up.
    page.evaluate(
        """() => { window.progressSeen = [];
          document.body.addEventListener('htmx:afterSettle', () => {
            const p = document.querySelector('.progress-row progress[value]');
            if (p) window.progressSeen.push([Number(p.value), Number(p.max)]);
          }); }"""
    )
    page.wait_for_selector(f"{row} video", timeout=60_000)
    seen = page.evaluate("window.progressSeen")
    moving = list(dict.fromkeys(done for done, total in seen if 0 < done < total))  # distinct, in order
    assert len(moving) >= 2 and moving == sorted(moving), f"progress seen: {seen}"

    duration = wait_in_page(
        page,
        "sel => { const v = document.querySelector(sel); return v && v.readyState >= 1 && v.duration; }",
        f"{row} video",
        timeout=15,
        what="the video's metadata",
    )
    assert duration == pytest.approx(30.0, abs=0.1)
    assert page.locator(f"{row} .badge").first.inner_text() == "completed"
    # Nothing is active any more: the panel comes back without its polling trigger. (On PostgreSQL a
    # poll may straddle the render's commit: the job's summary read just before it, the renders
    # just after. It then shows the video and keeps polling, the safe side; the next poll stops.)
    wait_in_page(
        page,
        "() => !document.querySelector('#status-panel').getAttribute('hx-trigger').includes('every')",
        timeout=10,
        what="the panel to stop polling",
    )
    assert page.get_attribute("#status-panel", "data-status") == "completed"
    assert blocked == []
    if stream == "pushed":  # the stream drove the reloads; no poll went out
        assert page.evaluate("window.streamOpened") is True and page.evaluate("window.polls") == 0
    else:  # polling did the work
        assert page.evaluate("window.streamOpened") is False and page.evaluate("window.polls") >= 2


def test_a_burst_of_status_events_ends_with_a_reload(app, browser, live_server):
    """The panel reloads at most once a second while events arrive, and once more after the
    last of a burst, so the state the user ends up seeing is the newest one. (htmx's own
    throttle dropped an event that came while a reload was in flight: when a render's last
    progress and its completion came close together, the page stayed at the progress.)"""
    with app.app_context():
        login = demo.ensure_demo(app)
    page = browser.new_page()
    # The page's clock: when each status event arrived, when each reload it caused went out
    # (not a poll, not a button), and how many of those reloads have come back.
    page.add_init_script(
        """window.events = []; window.reloads = []; window.reloadsDone = 0;
        const isReload = (e) => e.detail.elt.id === 'status-panel' && e.detail.requestConfig.triggeringEvent;
        document.addEventListener('htmx:sseOpen', (e) => {
          if (e.detail.source.counted) return;
          e.detail.source.counted = true;
          e.detail.source.addEventListener('status', () => window.events.push(performance.now())); });
        document.addEventListener('htmx:beforeSend', (e) => {
          if (!isReload(e)) return;
          window.reloads.push(performance.now());
          e.detail.xhr.addEventListener('loadend', () => { window.reloadsDone += 1; }); });"""
    )
    page.goto(f"{live_server}/login?next=/jobs/{login['jobId']}")
    page.fill("input[name=email]", login["email"])
    page.fill("input[name=password]", login["password"])
    page.click("button[type=submit]")
    # The stream opens with the current document, the one the page was made from: no reload.
    wait_in_page(page, "() => window.events.length >= 1", timeout=20, what="the stream's first event")
    page.wait_for_timeout(1500)  # past the moment a reload for it would have gone out
    assert page.evaluate("() => window.reloads.length") == 0
    settled = """n => window.events.length >= n && window.reloadsDone === window.reloads.length
      && window.reloads.some(t => t > window.events[window.events.length - 1])"""
    first = len(page.evaluate("() => window.events"))
    with app.app_context():
        job_id = uuid.UUID(str(login["jobId"]))
        for _ in range(3):  # three changes in quick succession, as when a render ends
            status_channel.publish_status(job_id, "{}")
    # The burst has arrived and a reload went out after its last event and came back. A reload
    # is only ever scheduled by an event, so none is still to come.
    wait_in_page(page, settled, first + 3, timeout=20, what="a reload after the burst's last event")
    events, reloads = page.evaluate("() => [window.events, window.reloads]")
    assert len(events) == first + 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(reloads)]
    assert all(gap >= 950 for gap in gaps), f"reloads closer than a second apart: {gaps} ms"
    during_burst = [t for t in reloads if t >= events[first]]
    assert 1 <= len(during_burst) < 3, f"{len(during_burst)} reloads for a burst of 3 events"
    page.close()


def test_a_change_during_a_reload_still_shows(app, browser, live_server, monkeypatch):
    """A status event that arrives while the panel's reload is on its way reloads the panel that
    reload brings. (Sent at once, htmx queued it on the panel being replaced, and its answer
    went nowhere: a render's failure came while a reload was out, and the page kept saying
    "generating".)"""
    from webapp.extensions import db
    from webapp.models import VideoGenerationStatus, VideoJob
    from webapp.services import summary
    from webapp.views import panel

    with app.app_context():
        login = demo.ensure_demo(app)
    job_id = uuid.UUID(str(login["jobId"]))
    made, release = threading.Event(), threading.Event()
    polled = panel.polled

    def held(*args, **kwargs):  # made before the change, answered after it
        html = polled(*args, **kwargs)
        if not release.is_set():
            made.set()
            release.wait(20)
        return html

    page = browser.new_page()
    page.goto(f"{live_server}/login?next=/jobs/{job_id}")
    page.fill("input[name=email]", login["email"])
    page.fill("input[name=password]", login["password"])
    page.click("button[type=submit]")
    wait_in_page(page, "() => window.htmx && document.querySelector('#status-panel')", what="the job page")
    page.wait_for_timeout(1500)  # the stream is open
    before = page.get_attribute("#status-panel", "data-status")
    assert before != "failed"

    monkeypatch.setattr(panel, "polled", held)
    with app.app_context():
        status_channel.publish_status(job_id, "{}")  # a reload goes out and is held
    assert made.wait(20), "no reload reached the server"
    with app.app_context():
        job = db.session.get(VideoJob, job_id)
        job.video_generation_data = summary.compute(job)[1]
        job.video_generation_status = VideoGenerationStatus.FAILED
        summary.changed(job_id)  # published on commit, as every change is
        db.session.commit()
    page.wait_for_timeout(2500)  # the event has come and its reload is due
    release.set()
    wait_in_page(
        page,
        "() => document.querySelector('#status-panel').dataset.status === 'failed'",
        timeout=15,
        what="the change made during the reload",
    )
    page.close()
