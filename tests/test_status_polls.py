"""Polls are answered from what each process remembers (principals.py, views/panel.py): yet a
revoked token, a deactivated user or a removed membership stops working within 5 s on every
process and at once on the one that made the change, a deleted job is gone at once, and the
shared status panel carries each asker's own CSRF token."""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from .helpers import bearer, csrf_token

STATUS = "/video-transform/{}/video-generation-status"
WITHIN = 5.0  # the issue: a revoked token stops working within 5 s


def _behind_the_apps_back(app, statement) -> None:
    """A change made by another process: straight to the database, past this process's flushes."""
    from webapp.extensions import db

    with app.app_context():
        db.session.execute(statement)
        db.session.commit()


def _seconds_until(client, url, headers, code) -> float:
    started = time.monotonic()
    while time.monotonic() - started < WITHIN + 2:
        if client.get(url, headers=headers).status_code == code:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"still not {code} after {WITHIN + 2} s")


def test_a_token_revoked_elsewhere_stops_working_within_5_seconds(app, client, factory):
    from webapp.models import ApiToken, utcnow

    user = factory.user(courses=["A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("A", lessons=1)
    url = STATUS.format(job.id)
    assert client.get(url, headers=headers).status_code == 200  # remembered from here on
    _behind_the_apps_back(app, sa.update(ApiToken).values(revoked_at=utcnow()))
    assert _seconds_until(client, url, headers, 401) <= WITHIN


def test_a_user_deactivated_or_a_membership_removed_elsewhere_ends_within_5_seconds(app, client, factory):
    from webapp.models import User, course_members

    first, second = factory.user(courses=["A"]), factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    url = STATUS.format(job.id)
    first_headers, second_headers = bearer(factory.token(first.email)), bearer(factory.token(second.email))
    assert client.get(url, headers=first_headers).status_code == 200
    assert client.get(url, headers=second_headers).status_code == 200
    _behind_the_apps_back(app, sa.update(User).where(User.id == first.id).values(active=False))
    _behind_the_apps_back(app, sa.delete(course_members).where(course_members.c.user_id == second.id))
    assert _seconds_until(client, url, first_headers, 401) <= WITHIN
    assert _seconds_until(client, url, second_headers, 404) <= WITHIN


def test_changes_made_by_this_process_count_at_once(app, client, factory, auth):
    staff = factory.user(courses=["A"])
    token = factory.token(staff.email)
    job = factory.job("A", lessons=1)
    url = STATUS.format(job.id)
    assert client.get(url, headers=bearer(token)).status_code == 200
    # The staff member revokes the token on the tokens page: the very next poll is refused.
    auth.login(staff.email)
    listing = client.get("/account/tokens").get_data(as_text=True)
    token_id = listing.split("/account/tokens/")[1].split("/revoke")[0]
    client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(client, "/jobs")})
    assert client.get(url, headers=bearer(token)).status_code == 401
    # An admin takes them off the course: their session's next poll no longer finds the job.
    assert client.get(url).status_code == 200
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Course, User

        course = db.session.scalars(sa.select(Course).where(Course.name == "A")).one()
        course.members.remove(db.session.get(User, staff.id))
        db.session.commit()
    assert client.get(url).status_code == 404


def test_a_deleted_job_is_gone_at_once_for_every_face(app, client, factory):
    user = factory.user(courses=["A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("A", lessons=1)
    url = STATUS.format(job.id)
    for extra in ({}, {"HX-Request": "true"}):
        assert client.get(url, headers={**headers, **extra}).status_code == 200
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import VideoJob
        from webapp.services import jobs

        jobs.delete_job(db.session.get(VideoJob, uuid.UUID(job.id)))
    for extra in ({}, {"HX-Request": "true"}):
        assert client.get(url, headers={**headers, **extra}).status_code == 404


def test_the_shared_panel_carries_each_askers_own_csrf_token(app, factory, auth):
    from webapp.views import panel

    first, second = factory.user(courses=["A"]), factory.user(courses=["A"])
    job = factory.job("A", lessons=2)
    url = STATUS.format(job.id)
    panels = {}
    for user in (first, second):
        client = app.test_client()
        auth.client = client
        auth.login(user.email)
        html = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
        token = html.split('name="csrf_token" value="')[1].split('"')[0]
        # The token in the panel is this session's: its "Generate all" form works.
        generate_all = html.split('action="')[1].split('"')[0]
        answer = client.post(generate_all, data={"csrf_token": token}, headers={"HX-Request": "true"})
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        panels[user.email] = (html, token)
    first_token, second_token = (token for _, token in panels.values())
    assert first_token != second_token
    for html, token in panels.values():
        assert html.count(token) == html.count('name="csrf_token"') > 0
        assert panel._MARKER not in html


def test_a_job_moved_to_another_course_leaves_the_old_courses_reach(app, client, factory):
    from webapp.extensions import db
    from webapp.models import Course, VideoJob
    from webapp.services import accounts, jobs

    old_member = factory.user(courses=["Old"])
    new_member = factory.user(courses=["New"])
    first, second = factory.job("Old", lessons=1), factory.job("Old", lessons=1)
    old_headers = bearer(factory.token(old_member.email))
    new_headers = bearer(factory.token(new_member.email))
    for job in (first, second):
        assert client.get(STATUS.format(job.id), headers=old_headers).status_code == 200
        assert client.get(STATUS.format(job.id), headers=new_headers).status_code == 404
    # Moved by this process (an admin on the job page): at once.
    with app.app_context():
        new = accounts.get_or_create_course("New")
        jobs.move_job(None, db.session.get(VideoJob, uuid.UUID(first.id)), new)
    assert client.get(STATUS.format(first.id), headers=old_headers).status_code == 404
    assert client.get(STATUS.format(first.id), headers=new_headers).status_code == 200
    # Moved by another process: within 5 s.
    with app.app_context():
        new_id = db.session.scalars(sa.select(Course.id).where(Course.name == "New")).one()
    job_id = uuid.UUID(second.id)
    _behind_the_apps_back(app, sa.update(VideoJob).where(VideoJob.id == job_id).values(course_id=new_id))
    assert _seconds_until(client, STATUS.format(second.id), old_headers, 404) <= WITHIN
    assert client.get(STATUS.format(second.id), headers=new_headers).status_code == 200
