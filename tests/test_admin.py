"""Administrators' pages: users (invite, role, deactivate, courses), courses (create, rename,
members), and the one-time set-password link an invitation gives."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner

from webapp.extensions import db
from webapp.models import Course, User

from .helpers import PASSWORD, Auth, bearer, csrf_token

NEW_PASSWORD = "a brand new password"
TOKEN_INPUT = re.compile(r'<input[^>]*name="token"[^>]*value="([^"]+)"')
LINK = re.compile(r'<code class="token" id="set-password-link">([^<]+)</code>')

# Every administrators' route: (method, path template); {user} and {course} are filled in.
ADMIN_ROUTES = [
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users/{user}"),
    ("POST", "/admin/users/{user}/role"),
    ("POST", "/admin/users/{user}/deactivate"),
    ("POST", "/admin/users/{user}/activate"),
    ("POST", "/admin/users/{user}/courses"),
    ("POST", "/admin/users/{user}/courses/{course}/remove"),
    ("POST", "/admin/users/{user}/link"),
    ("POST", "/admin/users/{user}/revoke-tokens"),
    ("GET", "/admin/courses"),
    ("POST", "/admin/courses"),
    ("GET", "/admin/courses/{course}"),
    ("POST", "/admin/courses/{course}/rename"),
    ("POST", "/admin/courses/{course}/members"),
    ("POST", "/admin/courses/{course}/members/{user}/remove"),
]


@pytest.fixture
def team(app, factory):
    """An admin, a staff member of Course A, and one of Course B, each with a job."""
    admin = factory.user("root@example.com", role="admin")
    alice = factory.user("alice@example.com", courses=["Course A"])
    bob = factory.user("bob@example.com", courses=["Course B"])
    job_a = factory.job("Course A", title="Alpha lessons", lessons=0)
    job_b = factory.job("Course B", title="Bravo lessons", lessons=0)
    with app.app_context():
        ids = {c.name: c.id for c in db.session.scalars(sa.select(Course))}
    return dict(admin=admin, alice=alice, bob=bob, job_a=job_a, job_b=job_b, courses=ids)


def fill(path: str, team) -> str:
    return path.format(user=team["bob"].id, course=team["courses"]["Course B"])


def snapshot(app):
    """Users, roles, activity, memberships and courses: what no refused request may change."""
    with app.app_context():
        users = db.session.scalars(sa.select(User).order_by(User.id)).all()
        return (
            [(u.email, u.role, u.active, u.password_hash, sorted(c.name for c in u.courses)) for u in users],
            sorted(db.session.scalars(sa.select(Course.name))),
        )


def post(client, path: str, data: dict | None = None, page: str = "/admin/users", **kwargs):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})}, **kwargs)


def invite(client, email: str, role: str = "staff", courses=()) -> str:
    if role == "staff" and not courses:  # staff are invited into a course: the first one listed
        courses = re.findall(r'name="courses" [^>]*value="(\d+)"', client.get("/admin/users").text)[:1]
    response = post(client, "/admin/users", {"email": email, "role": role, "courses": list(courses)})
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == "/admin/users"
    page = client.get("/admin/users")
    assert f"{email.lower()} is invited." in page.text
    return unescape(LINK.search(page.text).group(1))


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def set_password(client, link: str, new: str = NEW_PASSWORD, confirm: str | None = None, **kwargs):
    page = client.get(path_of(link))
    assert page.status_code == 200, page.text
    token = TOKEN_INPUT.search(page.text)
    data = {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1),
        "token": unescape(token.group(1)),
        "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    }
    return client.post("/set-password", data=data, **kwargs)


# --- who may reach the pages ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_a_stranger_gets_the_login_page(app, client, team, method, path):
    before = snapshot(app)
    response = client.open(fill(path, team), method=method, data={"email": "x@example.com", "name": "X"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert snapshot(app) == before


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_staff_are_refused_every_admin_page_and_action(app, client, auth, team, method, path):
    auth.login(team["alice"].email)
    before = snapshot(app)
    data = None
    if method == "POST":
        data = {
            "csrf_token": csrf_token(client, "/jobs"),
            "email": "intruder@example.com",
            "role": "admin",
            "name": "Taken over",
            "course": team["courses"]["Course A"],
            "user": team["alice"].id,
        }
    response = client.open(fill(path, team), method=method, data=data)
    assert response.status_code == 403
    assert "for administrators" in response.text
    assert snapshot(app) == before


def test_a_staff_token_is_refused_too(app, client, factory, team):
    token = factory.token(team["alice"].email)
    response = client.post("/admin/courses", data={"name": "Mine now"}, headers=bearer(token))
    assert response.status_code == 403
    assert client.get("/admin/users", headers=bearer(token)).status_code == 403


def test_only_admins_see_the_admin_links(client, auth, team):
    auth.login(team["alice"].email)
    assert "/admin/users" not in client.get("/jobs").text
    auth.logout()
    auth.login(team["admin"].email)
    html = client.get("/jobs").text
    assert 'href="/admin/users"' in html and 'href="/admin/courses"' in html


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/admin/users", {"email": "new@example.com", "role": "admin"}),
        ("/admin/users/{user}/role", {"role": "admin"}),
        ("/admin/users/{user}/deactivate", {}),
        ("/admin/users/{user}/link", {}),
        ("/admin/users/{user}/courses/{course}/remove", {}),
        ("/admin/courses", {"name": "Forged"}),
        ("/admin/courses/{course}/rename", {"name": "Forged"}),
    ],
)
def test_admin_posts_need_the_csrf_token(app, client, auth, team, path, data):
    auth.login(team["admin"].email)
    before = snapshot(app)
    response = client.post(fill(path, team), data=data)
    assert response.status_code == 400
    assert "security token" in response.text
    assert snapshot(app) == before


def test_admin_pages_are_never_cached(client, auth, team):
    auth.login(team["admin"].email)
    for path in ("/admin/users", f"/admin/users/{team['bob'].id}", "/admin/courses"):
        assert client.get(path).headers["Cache-Control"] == "no-store"


def test_unknown_user_or_course_is_404(client, auth, team):
    auth.login(team["admin"].email)
    assert client.get("/admin/users/999999").status_code == 404
    assert client.get("/admin/courses/999999").status_code == 404
    assert post(client, "/admin/users/999999/role", {"role": "admin"}).status_code == 404


# --- users -----------------------------------------------------------------------------------


def test_users_list_shows_email_role_active_and_courses(client, auth, team):
    auth.login(team["admin"].email)
    html = client.get("/admin/users").text
    row = re.search(rf'<tr data-user="{team["alice"].id}">(.*?)</tr>', html, re.S).group(1)
    assert "alice@example.com" in row and "staff" in row and "active" in row and "Course A" in row
    admin_row = re.search(rf'<tr data-user="{team["admin"].id}">(.*?)</tr>', html, re.S).group(1)
    assert "administrator" in admin_row


def test_invite_then_set_password_once_and_see_only_the_course(app, client, auth, team):
    auth.login(team["admin"].email)
    link = invite(client, "Carol@Example.com", courses=[team["courses"]["Course A"]])
    assert "/set-password?token=" in link and link.startswith("http://localhost/")
    listed = client.get("/admin/users").text
    assert "carol@example.com" in listed and "(no password yet)" in listed
    # Shown once: the list page does not show the link again.
    assert "set-password?token=" not in listed
    with app.app_context():
        carol = db.session.scalars(sa.select(User).where(User.email == "carol@example.com")).one()
        assert not carol.has_password and [c.name for c in carol.courses] == ["Course A"]

    auth.logout()
    # Without a password nobody can log in as the invitee, whatever they try.
    for guess in ("", "!", carol.password_hash, PASSWORD):
        assert auth.login("carol@example.com", guess).status_code == (422 if guess == "" else 401)
        assert client.get("/jobs").status_code == 302

    response = set_password(client, link)
    assert response.status_code == 302 and response.headers["Location"] == "/jobs"
    jobs_page = client.get("/jobs").text
    assert "Alpha lessons" in jobs_page and "Bravo lessons" not in jobs_page
    assert client.get(f"/jobs/{team['job_b'].id}").status_code == 404
    assert client.get("/admin/users").status_code == 403

    # The link worked once; now it is refused, and the password stays.
    again = client.get(path_of(link))
    assert again.status_code == 404 and "not valid" in again.text
    auth.logout()
    assert auth.login("carol@example.com", NEW_PASSWORD).status_code == 302


def test_a_used_link_cannot_set_the_password_a_second_time(client, auth, team):
    auth.login(team["admin"].email)
    link = invite(client, "dan@example.com")
    page = client.get(path_of(link)).text
    token = unescape(TOKEN_INPUT.search(page).group(1))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": csrf, "token": token, "new_password": NEW_PASSWORD}
    data["confirm_password"] = NEW_PASSWORD
    assert client.post("/set-password", data=data).status_code == 302
    # The same form posted again (a replay, or the page kept open in another tab).
    again = client.post(
        "/set-password",
        data={**data, "csrf_token": csrf_token(client, "/jobs"), "new_password": "attacker password!"},
    )
    assert again.status_code == 404
    auth.logout()
    assert auth.login("dan@example.com", "attacker password!").status_code == 401
    assert auth.login("dan@example.com", NEW_PASSWORD).status_code == 302


def test_the_link_expires_after_7_days(app, client, auth, team, monkeypatch):
    from webapp.services import accounts

    auth.login(team["admin"].email)
    invite(client, "late@example.com")

    def link_issued(seconds_ago: int) -> str:
        # The very link the invitation gave, as it would have been signed that long ago.
        with app.app_context(), monkeypatch.context() as patch:
            patch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - seconds_ago)
            token = accounts.set_password_token(accounts.find_user("late@example.com"))
            return f"/set-password?token={token}"

    day = 24 * 3600
    assert client.get(link_issued(6 * day)).status_code == 200
    response = client.get(link_issued(7 * day + 60))
    assert response.status_code == 404 and "older than 7 days" in response.text


def test_set_password_follows_the_password_rules_and_keeps_the_link(client, auth, team):
    auth.login(team["admin"].email)
    link = invite(client, "erin@example.com")
    auth.logout()
    short = set_password(client, link, new="short")
    assert short.status_code == 422 and "at least 8 characters" in short.text
    differ = set_password(client, link, new=NEW_PASSWORD, confirm="something else entirely")
    assert differ.status_code == 422 and "differ" in differ.text
    assert set_password(client, link).status_code == 302


def test_set_password_needs_the_csrf_token(app, client, auth, team):
    """Another site must not log a visitor into an account of its choosing (login CSRF)."""
    auth.login(team["admin"].email)
    link = invite(client, "frank@example.com")
    auth.logout()
    token = urlsplit(link).query.removeprefix("token=")
    before = snapshot(app)
    data = {"token": unescape(token), "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    response = client.post("/set-password", data=data)
    assert response.status_code == 400
    assert snapshot(app) == before
    assert client.get("/jobs").status_code == 302  # not logged in


def test_forged_and_foreign_tokens_are_refused(app, client, factory, team):
    # A signed API token (POST /auth/token) is not a set-password link …
    signed = client.post("/auth/token", json={"email": "alice@example.com", "password": PASSWORD})
    api_token = signed.get_json()["accessToken"]
    assert client.get(f"/set-password?token={api_token}").status_code == 404
    assert client.get("/set-password?token=garbage").status_code == 404
    assert client.get("/set-password").status_code == 404
    assert client.get("/set-password?token=" + "x" * 5000).status_code == 404
    # … and a set-password link is not a bearer token.
    from webapp.services import accounts

    with app.app_context():
        link_token = accounts.set_password_token(accounts.find_user("alice@example.com"))
    assert client.get("/api/jobs", headers=bearer(link_token)).status_code == 401


def test_the_set_password_page_is_never_cached_and_its_token_stays_out_of_the_path(client, auth, team):
    auth.login(team["admin"].email)
    link = invite(client, "gina@example.com")
    assert urlsplit(link).path == "/set-password"  # request log lines record paths only
    page = client.get(path_of(link))
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"  # its styles and scripts do not get the token
    assert 'action="/set-password"' in page.text


def test_inviting_an_existing_email_or_a_bad_one_is_refused(app, client, auth, team):
    auth.login(team["admin"].email)
    before = snapshot(app)
    taken = post(
        client,
        "/admin/users",
        {"email": "ALICE@example.com", "role": "staff", "courses": [team["courses"]["Course A"]]},
    )
    assert taken.status_code == 422 and "already has an account" in taken.text
    bad = post(
        client,
        "/admin/users",
        {"email": "no-at-sign", "role": "staff", "courses": [team["courses"]["Course A"]]},
    )
    assert bad.status_code == 422
    wrong_role = post(client, "/admin/users", {"email": "x@example.com", "role": "root"})
    assert wrong_role.status_code == 422
    form = {"email": "x@example.com", "role": "staff", "courses": "999999"}
    wrong_course = post(client, "/admin/users", form)
    assert wrong_course.status_code == 422 and "Choose among the listed courses" in wrong_course.text
    assert snapshot(app) == before


def test_deactivated_users_cannot_log_in_and_their_sessions_and_tokens_end(app, factory, team):
    admin_client, alice_client = app.test_client(), app.test_client()
    Auth(admin_client).login(team["admin"].email)
    Auth(alice_client).login(team["alice"].email)
    token = factory.token(team["alice"].email)
    assert alice_client.get("/jobs").status_code == 200

    user_page = f"/admin/users/{team['alice'].id}"
    response = post(admin_client, f"{user_page}/deactivate", page=user_page, follow_redirects=True)
    assert "is deactivated" in response.text
    assert alice_client.get("/jobs").status_code == 302  # the session has ended
    assert alice_client.get("/api/jobs", headers=bearer(token)).status_code == 401
    assert Auth(app.test_client()).login(team["alice"].email).status_code == 401

    post(admin_client, f"{user_page}/activate", page=user_page)
    assert Auth(app.test_client()).login(team["alice"].email).status_code == 302
    # Deactivating revoked the tokens: an account activated again (perhaps after it was taken
    # over) does not bring back a token someone else may hold.
    assert alice_client.get("/api/jobs", headers=bearer(token)).status_code == 401
    assert "No API tokens work" in admin_client.get(user_page).text


def test_an_admin_sees_and_revokes_a_users_api_tokens(app, client, factory, team):
    """For an account that may have been taken over: its tokens are listed on its page (name,
    prefix, last use; never the token) and revoked at once, sessions and password untouched."""
    first = factory.token(team["alice"].email, "LMS sync")
    second = factory.token(team["alice"].email, "<b>nightly</b>")
    bobs = factory.token(team["bob"].email, "Bob's")
    assert client.get("/api/jobs", headers=bearer(first)).status_code == 200
    admin_client, alice_client = app.test_client(), app.test_client()
    Auth(admin_client).login(team["admin"].email)
    Auth(alice_client).login(team["alice"].email)
    user_page = f"/admin/users/{team['alice'].id}"
    page = admin_client.get(user_page).text
    assert "2 API tokens work" in page and "LMS sync" in page and "&lt;b&gt;nightly&lt;/b&gt;" in page
    assert first[:12] in page and first not in page and second not in page

    revoked = post(admin_client, f"{user_page}/revoke-tokens", page=user_page, follow_redirects=True)
    assert "2 API tokens of alice@example.com revoked" in revoked.text and "No API tokens" in revoked.text
    for token in (first, second):
        assert client.get("/api/jobs", headers=bearer(token)).status_code == 401
    assert client.get("/api/jobs", headers=bearer(bobs)).status_code == 200  # only hers
    assert alice_client.get("/jobs").status_code == 200  # her session goes on
    bob_client = app.test_client()
    Auth(bob_client).login(team["bob"].email)
    refused = post(bob_client, f"/admin/users/{team['bob'].id}/revoke-tokens", page="/jobs")
    assert refused.status_code == 403
    assert client.get("/api/jobs", headers=bearer(bobs)).status_code == 200


def test_staff_are_invited_into_at_least_one_course(app, client, auth, team):
    """Staff see only their courses' jobs: invited into none, they would log in to nothing."""
    auth.login(team["admin"].email)
    before = snapshot(app)
    refused = post(client, "/admin/users", {"email": "nobody@example.com", "role": "staff"})
    assert refused.status_code == 422 and "Choose at least one course" in refused.text
    assert 'value="nobody@example.com"' in refused.text  # what was typed stays
    assert snapshot(app) == before
    admin = post(client, "/admin/users", {"email": "boss@example.com", "role": "admin"})
    assert admin.status_code == 303  # administrators see every course


def test_a_deactivated_invitee_cannot_use_the_link(client, auth, team, app):
    auth.login(team["admin"].email)
    link = invite(client, "hank@example.com")
    with app.app_context():
        hank = db.session.scalars(sa.select(User).where(User.email == "hank@example.com")).one()
    post(client, f"/admin/users/{hank.id}/deactivate")
    assert client.get(path_of(link)).status_code == 404


def test_set_role_and_the_last_admin_stays(app, client, auth, team):
    auth.login(team["admin"].email)
    admin_id, alice_id = team["admin"].id, team["alice"].id
    # The only administrator cannot take away their own role or deactivate themselves.
    response = post(client, f"/admin/users/{admin_id}/role", {"role": "staff"}, follow_redirects=True)
    assert "last active administrator" in response.text
    response = post(client, f"/admin/users/{admin_id}/deactivate", follow_redirects=True)
    assert "last active administrator" in response.text
    with app.app_context():
        assert db.session.get(User, admin_id).is_admin and db.session.get(User, admin_id).active
    # An administrator invited but without a password yet cannot log in: they do not count.
    invite(client, "boss@example.com", role="admin")
    response = post(client, f"/admin/users/{admin_id}/role", {"role": "staff"}, follow_redirects=True)
    assert "last active administrator" in response.text
    page = client.get(f"/admin/users/{admin_id}").text
    assert 'data-confirm="Change your own role?' in page and "Deactivate your own account?" in page

    response = post(client, f"/admin/users/{alice_id}/role", {"role": "admin"}, follow_redirects=True)
    assert "alice@example.com is now an administrator" in response.text
    response = post(client, f"/admin/users/{admin_id}/role", {"role": "staff"}, follow_redirects=True)
    assert "root@example.com is now staff" in response.text
    # No longer an administrator: the next request is refused.
    assert client.get("/admin/users").status_code == 403


def test_new_set_password_link_replaces_the_password_and_earlier_links(client, auth, team, app):
    auth.login(team["admin"].email)
    first = invite(client, "ivy@example.com")
    with app.app_context():
        ivy_id = db.session.scalars(sa.select(User.id).where(User.email == "ivy@example.com")).one()
    response = post(client, f"/admin/users/{ivy_id}/link", follow_redirects=True)
    second = unescape(LINK.search(response.text).group(1))
    assert client.get(path_of(first)).status_code == 404
    assert client.get(path_of(second)).status_code == 200

    # For a user with a password: it stops working, and their sessions end.
    bob_client = app.test_client()
    Auth(bob_client).login(team["bob"].email)
    response = post(client, f"/admin/users/{team['bob'].id}/link", follow_redirects=True)
    assert response.status_code == 200 and LINK.search(response.text)
    assert bob_client.get("/jobs").status_code == 302
    assert Auth(app.test_client()).login(team["bob"].email).status_code == 401


def test_memberships_from_the_user_page_take_effect_at_once(app, client, factory, team):
    admin = app.test_client()
    Auth(admin).login(team["admin"].email)
    alice = app.test_client()
    Auth(alice).login(team["alice"].email)
    assert alice.get(f"/jobs/{team['job_b'].id}").status_code == 404

    user_page = f"/admin/users/{team['alice'].id}"
    course_b = team["courses"]["Course B"]
    response = post(
        admin, f"{user_page}/courses", {"course": course_b}, page=user_page, follow_redirects=True
    )
    assert "is a member of Course B" in response.text
    assert alice.get(f"/jobs/{team['job_b'].id}").status_code == 200

    course_a = team["courses"]["Course A"]
    response = post(admin, f"{user_page}/courses/{course_a}/remove", page=user_page, follow_redirects=True)
    assert "no longer a member of Course A" in response.text
    assert alice.get(f"/jobs/{team['job_a'].id}").status_code == 404
    assert "Alpha lessons" not in alice.get("/jobs").text

    bad = post(admin, f"{user_page}/courses", {"course": "999999"}, page=user_page, follow_redirects=True)
    assert "Choose a course" in bad.text


# --- courses ---------------------------------------------------------------------------------


def test_courses_list_create_rename_and_members(app, client, auth, team):
    auth.login(team["admin"].email)
    listed = client.get("/admin/courses").text
    course_a = team["courses"]["Course A"]
    row = re.search(rf'<tr data-course="{course_a}">(.*?)</tr>', listed, re.S).group(1)
    assert "Course A" in row and re.findall(r"<td>(\d+)</td>", row) == ["1", "1"]  # members, jobs

    response = post(client, "/admin/courses", {"name": "  Thai 201 "}, page="/admin/courses")
    assert response.status_code == 302
    course_page = response.headers["Location"]
    html = client.get(course_page).text
    assert "Course Thai 201 created" in html and "No members yet" in html

    # Add and remove a member from the course page.
    response = post(client, f"{course_page}/members", {"user": team["bob"].id}, follow_redirects=True)
    assert "bob@example.com is a member of Thai 201" in response.text
    with app.app_context():
        bob = db.session.get(User, team["bob"].id)
        assert sorted(c.name for c in bob.courses) == ["Course B", "Thai 201"]
    response = post(client, f"{course_page}/members/{team['bob'].id}/remove", follow_redirects=True)
    assert "bob@example.com is no longer a member of Thai 201" in response.text

    response = post(client, f"{course_page}/rename", {"name": "Thai 202"}, follow_redirects=True)
    assert "Course renamed to Thai 202" in response.text
    with app.app_context():
        names = sorted(db.session.scalars(sa.select(Course.name)))
    assert names == ["Course A", "Course B", "Thai 202"]


def test_course_names_are_unique_and_limited(app, client, auth, team):
    auth.login(team["admin"].email)
    before = snapshot(app)
    taken = post(client, "/admin/courses", {"name": "Course A"}, page="/admin/courses")
    assert taken.status_code == 422 and "already exists" in taken.text
    # Letter case aside too: two courses nobody could tell apart in a list.
    cased = post(client, "/admin/courses", {"name": "course a"}, page="/admin/courses")
    assert cased.status_code == 422 and "already exists" in cased.text
    empty = post(client, "/admin/courses", {"name": "   "}, page="/admin/courses")
    assert empty.status_code == 422
    long = post(client, "/admin/courses", {"name": "x" * 121}, page="/admin/courses")
    assert long.status_code == 422 and "at most 120" in long.text
    course_b = team["courses"]["Course B"]
    rename = post(client, f"/admin/courses/{course_b}/rename", {"name": "COURSE A"}, page="/admin/courses")
    assert rename.status_code == 422 and "already exists" in rename.text
    assert snapshot(app) == before
    own = post(client, f"/admin/courses/{course_b}/rename", {"name": "course b"}, page="/admin/courses")
    assert own.status_code == 302  # its own name in another letter case
    # Beyond ASCII as well (SQLite's own lower() folds A-Z only).
    assert post(client, "/admin/courses", {"name": "Éclairs ΣΟΦΙΑ"}, page="/admin/courses").status_code == 302
    accents = post(client, "/admin/courses", {"name": "éclairs σοφια"}, page="/admin/courses")
    assert accents.status_code == 422 and "already exists" in accents.text


def test_what_people_typed_is_shown_escaped(client, auth, team):
    auth.login(team["admin"].email)
    evil = '<script>alert("x")</script>'
    post(client, "/admin/courses", {"name": evil}, page="/admin/courses")
    # An address with markup is refused, and said so escaped.
    refused = post(
        client,
        "/admin/users",
        {"email": "<b>mallory</b>@example.com", "role": "staff", "courses": [team["courses"]["Course A"]]},
    )
    assert "is not an email address" in refused.text and "<b>mallory" not in refused.text
    for path in ("/admin/courses", "/admin/users"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<b>mallory" not in html
    assert "&lt;script&gt;alert" in client.get("/admin/courses").text


def test_the_web_servers_access_log_leaves_out_query_strings_and_referers():
    """A set-password link's token is in its query string: gunicorn must not log it."""
    import runpy

    from .helpers import ROOT

    log_format = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["access_log_format"]
    assert "%(U)s" in log_format
    assert not any(atom in log_format for atom in ("%(r)s", "%(q)s", "%(f)s"))


def test_secrets_are_shown_once_after_a_redirect_so_a_reload_repeats_nothing(client, auth, team, app):
    """Invite and new-link answers are redirects: reloading the page they lead to neither invites
    again nor makes a new link (which would kill the one just sent), and the link is not shown
    again; another admin's browser never sees it."""
    auth.login(team["admin"].email)
    answer = post(
        client,
        "/admin/users",
        {"email": "una@example.com", "role": "staff", "courses": [team["courses"]["Course A"]]},
    )
    assert answer.status_code == 303 and "set-password" not in answer.text
    first = client.get("/admin/users")
    link = unescape(LINK.search(first.text).group(1))
    again = client.get("/admin/users")
    assert "una@example.com is invited." not in again.text and not LINK.search(again.text)
    assert client.get(path_of(link)).status_code == 200  # still the one link that works

    with app.app_context():
        una = db.session.scalars(sa.select(User.id).where(User.email == "una@example.com")).one()
    reset = post(client, f"/admin/users/{una}/link")
    assert reset.status_code == 303 and reset.headers["Location"] == f"/admin/users/{una}"
    other_admin = app.test_client()
    Auth(other_admin).login(team["admin"].email)
    assert not LINK.search(other_admin.get(f"/admin/users/{una}").text)
    shown = client.get(f"/admin/users/{una}")
    new = unescape(LINK.search(shown.text).group(1))
    assert not LINK.search(client.get(f"/admin/users/{una}").text)
    assert client.get(path_of(link)).status_code == 404 and client.get(path_of(new)).status_code == 200


def test_an_admin_cannot_lock_themselves_out_with_a_link_of_their_own(client, auth, team, app):
    """A new link ends the sessions of the user it is for: for oneself, the session that was to
    show it. Refused, with the way to change one's own password; the password keeps working."""
    admin = team["admin"]
    auth.login(admin.email)
    page = client.get(f"/admin/users/{admin.id}").text
    assert f"/admin/users/{admin.id}/link" not in page and 'href="/account"' in page
    response = post(
        client, f"/admin/users/{admin.id}/link", page=f"/admin/users/{admin.id}", follow_redirects=True
    )
    assert response.status_code == 200 and "Change your own password on your account page" in response.text
    assert client.get("/admin/users").status_code == 200  # still logged in
    assert Auth(app.test_client()).login(admin.email).status_code == 302  # the password still works


def test_two_admins_demoting_each_other_at_once_leave_one(app, factory, monkeypatch):
    """Each counted the other before either wrote, and both went: nobody could administer. Now
    the second waits for the first and is refused, on SQLite and PostgreSQL alike."""
    import threading

    from webapp.models import Role
    from webapp.services import user_admin

    one = factory.user("one@example.com", role="admin")
    two = factory.user("two@example.com", role="admin")
    checked = user_admin._keep_an_admin

    def slow(user):
        checked(user)
        time.sleep(0.5)  # both are past their check before either commits, if nothing holds one back

    monkeypatch.setattr(user_admin, "_keep_an_admin", slow)
    outcomes = []

    def demote(actor_id, target_id):
        with app.app_context():
            actor, target = db.session.get(User, actor_id), db.session.get(User, target_id)
            try:
                user_admin.set_role(actor, target, Role.STAFF)
                outcomes.append("demoted")
            except ValueError as exc:
                outcomes.append(str(exc))

    threads = [threading.Thread(target=demote, args=pair) for pair in ((one.id, two.id), (two.id, one.id))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes)[0] == "demoted" and "last active administrator" in sorted(outcomes)[1]
    with app.app_context():
        admins = db.session.scalars(sa.select(User.email).where(User.role == Role.ADMIN)).all()
    assert len(admins) == 1


def test_setting_the_same_role_says_so_and_a_used_link_offers_the_login(client, auth, team):
    auth.login(team["admin"].email)
    same = post(client, f"/admin/users/{team['alice'].id}/role", {"role": "staff"}, follow_redirects=True)
    assert "alice@example.com is staff already." in same.text and "is now staff" not in same.text
    link = invite(client, "una@example.com")
    auth.logout()
    assert set_password(client, link).status_code in (302, 303)
    auth.logout()
    used = client.get(path_of(link))
    assert used.status_code == 404 and 'href="/login"' in used.text and "Back to the jobs" not in used.text


def test_adding_a_member_or_a_course_starts_from_a_choice_not_the_first_entry(client, auth, team):
    """ "Add member" and "Add to course" came with the first user or course already chosen: one
    click on the button added whoever was first in the list. Now they ask, and the browser
    refuses the button until a choice is made (a required select with an empty first option);
    sent empty anyway, the server says what to do."""
    auth.login(team["admin"].email)
    course_a = team["courses"]["Course A"]
    for page, name, prompt in (
        (f"/admin/courses/{course_a}", "user", "Choose a user…"),
        (f"/admin/users/{team['bob'].id}", "course", "Choose a course…"),
    ):
        html = client.get(page).text
        select = re.search(rf'<select[^>]* name="{name}"[^>]*>(.*?)</select>', html, re.S)
        assert select and "required" in select.group(0)
        options = re.findall(r"<option([^>]*)>([^<]*)</option>", select.group(1))
        assert options[0][1] == prompt and 'value=""' in options[0][0] and len(options) >= 2
        assert not any("selected" in attributes for attributes, _ in options[1:])
        refused = post(client, f"{page}/{'members' if name == 'user' else 'courses'}", {name: ""}, page=page)
        assert refused.status_code in (302, 422)
        assert prompt.rstrip("…") in client.get(page).text if refused.status_code == 302 else refused.text


def test_invite_them_into_this_course_ticks_the_course(client, auth, team):
    """The course page's "Invite them" led to an invitation form with no course ticked."""
    auth.login(team["admin"].email)
    course_b = team["courses"]["Course B"]
    html = client.get(f"/admin/courses/{course_b}").text
    link = unescape(re.search(r'<a href="([^"]+)">Invite them</a>', html).group(1))
    assert link == f"/admin/users?course={course_b}#invite"
    form = client.get(link.split("#")[0]).text
    ticked = re.findall(
        r'<input[^>]*checked[^>]*name="courses"[^>]*value="(\d+)"|'
        r'<input[^>]*name="courses"[^>]*value="(\d+)"[^>]*checked',
        form,
    )
    assert [a or b for a, b in ticked] == [str(course_b)]
    assert 'id="invite"' in form
    plain = client.get("/admin/users").text  # from the menu: nothing ticked
    assert not re.search(r'<input[^>]*name="courses"[^>]*checked', plain)
