"""The command line does what the administrators' pages do, through the same services."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Course, User, VideoJob

from .helpers import bearer, csrf_token


def ok(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()


def refused(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert message in result.output


def user_named(app, email: str) -> User:
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.email == email)).one()
        user.courses  # noqa: B018 - loaded while the session is open
        return user


def test_invite_prints_a_link_that_works_once(app, client, runner, factory):
    factory.job("Thai 101", title="Greetings", lessons=0)
    factory.job("Other", title="Not yours", lessons=0)
    lines = ok(runner.invoke(args=["users", "invite", "New@Example.com", "--course", "Thai 101"]))
    link = lines[-1]
    assert link.startswith("/set-password?token=")
    user = user_named(app, "new@example.com")
    assert not user.has_password and [c.name for c in user.courses] == ["Thai 101"]

    page = client.get(link)
    assert page.status_code == 200 and "new@example.com" in page.text
    token = urlsplit(link).query.removeprefix("token=")
    response = client.post(
        "/set-password",
        data={
            "csrf_token": csrf_token(client, link),
            "token": token,
            "new_password": "chosen password",
            "confirm_password": "chosen password",
        },
    )
    assert response.status_code == 302
    html = client.get("/jobs").text
    assert "Greetings" in html and "Not yours" not in html
    assert client.get(link).status_code == 404


def test_invite_with_a_url_prints_a_whole_link(runner, factory):
    factory.user("root@example.com", role="admin")
    lines = ok(
        runner.invoke(
            args=[
                "users",
                "invite",
                "ops@example.com",
                "--role",
                "admin",
                "--url",
                "https://videos.example.com/",
            ]
        )
    )
    assert lines[-1].startswith("https://videos.example.com/set-password?token=")
    assert "(admin)" in lines[0]


def test_invite_refuses_an_existing_user_and_an_unknown_course(app, runner, factory):
    factory.user("taken@example.com")
    refused(runner.invoke(args=["users", "invite", "TAKEN@example.com"]), "already has an account")
    refused(runner.invoke(args=["users", "invite", "x@example.com", "--course", "Nope"]), "no course named")
    with app.app_context():
        assert db.session.scalars(sa.select(User).where(User.email == "x@example.com")).one_or_none() is None


def test_password_link_replaces_the_password(app, client, runner, factory, auth):
    factory.user("ann@example.com", courses=["A"])
    lines = ok(runner.invoke(args=["users", "password-link", "ann@example.com"]))
    assert lines[-1].startswith("/set-password?token=")
    assert auth.login("ann@example.com").status_code == 401  # the old password no longer works
    assert client.get(lines[-1]).status_code == 200
    refused(runner.invoke(args=["users", "password-link", "nobody@example.com"]), "no user with email")


def test_set_role_and_the_last_admin(app, runner, factory):
    factory.user("root@example.com", role="admin")
    factory.user("ann@example.com")
    assert ok(runner.invoke(args=["users", "set-role", "ann@example.com", "admin"]))[-1] == (
        "ann@example.com is admin."
    )
    ok(runner.invoke(args=["users", "set-role", "root@example.com", "staff"]))
    refused(
        runner.invoke(args=["users", "set-role", "ann@example.com", "staff"]), "last active administrator"
    )
    refused(runner.invoke(args=["users", "deactivate", "ann@example.com"]), "last active administrator")
    assert user_named(app, "ann@example.com").is_admin
    result = runner.invoke(args=["users", "set-role", "ann@example.com", "root"])
    assert result.exit_code == 2  # not a role


def test_users_create_keeps_the_last_admin_too(app, runner, factory):
    """`users create` on an existing user changes their role as `set-role` does: not the last
    active administrator's (it made them staff, and nobody could administer any more)."""
    factory.user("root@example.com", role="admin")
    refused(
        runner.invoke(args=["users", "create", "root@example.com", "--role", "staff"]),
        "last active administrator",
    )
    assert user_named(app, "root@example.com").is_admin
    factory.user("ann@example.com", role="admin")
    assert ok(runner.invoke(args=["users", "create", "root@example.com", "--role", "staff"]))[-1] == (
        "root@example.com (staff) in no courses"
    )


def test_users_create_says_which_courses_it_made(app, runner, factory):
    """`--course` makes a course that does not exist: a misspelt one came silently."""
    factory.job("Thai 101", title="Greetings", lessons=0)
    lines = ok(
        runner.invoke(
            args=[
                "users",
                "create",
                "ann@example.com",
                "--password",
                "x" * 12,
                "--course",
                "thai 101",
                "--course",
                "Thia 102",
            ]
        )
    )
    assert lines == ["New course: Thia 102", "ann@example.com (staff) in Thai 101, Thia 102"]


def test_no_token_for_a_deactivated_user(app, runner, factory, client):
    """A token made for a deactivated user would start working when they are activated again,
    which activating promises never happens (their tokens were revoked): refused."""
    factory.user("root@example.com", role="admin")
    factory.user("ann@example.com")
    ok(runner.invoke(args=["users", "deactivate", "ann@example.com"]))
    refused(runner.invoke(args=["tokens", "create", "ann@example.com"]), "ann@example.com is deactivated")
    ok(runner.invoke(args=["users", "activate", "ann@example.com"]))
    with app.app_context():
        assert not db.session.scalars(sa.select(User).where(User.email == "ann@example.com")).one().tokens


def test_deactivated_user_cannot_log_in(runner, factory, auth):
    factory.user("ann@example.com")
    ok(runner.invoke(args=["users", "deactivate", "ann@example.com"]))
    assert auth.login("ann@example.com").status_code == 401
    ok(runner.invoke(args=["users", "activate", "ann@example.com"]))
    assert auth.login("ann@example.com").status_code == 302


def test_users_list(runner, factory):
    factory.user("b@example.com", courses=["Thai 101"])
    ok(runner.invoke(args=["users", "invite", "a@example.com"]))
    lines = ok(runner.invoke(args=["users", "list"]))
    assert lines == [
        "a@example.com\tstaff\tactive, no password yet\t-",
        "b@example.com\tstaff\tactive\tThai 101",
    ]


def test_courses_create_rename_and_members(app, runner, factory, client, auth):
    factory.user("ann@example.com")
    job = factory.job("Elsewhere", title="Their job", lessons=0)
    ok(runner.invoke(args=["courses", "create", "Thai 101"]))
    refused(runner.invoke(args=["courses", "create", "Thai 101"]), "already exists")
    refused(runner.invoke(args=["courses", "create", "x" * 121]), "at most 120")

    assert ok(runner.invoke(args=["courses", "add-member", "Thai 101", "ann@example.com"]))[-1] == (
        "ann@example.com is now a member of Thai 101."
    )
    assert (
        "was already" in ok(runner.invoke(args=["courses", "add-member", "Thai 101", "ann@example.com"]))[-1]
    )
    ok(runner.invoke(args=["courses", "rename", "Thai 101", "Thai 102"]))
    refused(runner.invoke(args=["courses", "rename", "Thai 102", "Elsewhere"]), "already exists")
    refused(runner.invoke(args=["courses", "rename", "Nope", "X"]), "no course named")
    assert [c.name for c in user_named(app, "ann@example.com").courses] == ["Thai 102"]

    ok(runner.invoke(args=["courses", "add-member", "Elsewhere", "ann@example.com"]))
    auth.login("ann@example.com")
    assert client.get(f"/jobs/{job.id}").status_code == 200
    assert (
        "is no longer"
        in ok(runner.invoke(args=["courses", "remove-member", "Elsewhere", "ann@example.com"]))[-1]
    )
    assert client.get(f"/jobs/{job.id}").status_code == 404  # at once, in the open session
    assert (
        "was not" in ok(runner.invoke(args=["courses", "remove-member", "Elsewhere", "ann@example.com"]))[-1]
    )
    refused(runner.invoke(args=["courses", "add-member", "Elsewhere", "nobody@example.com"]), "no user")

    lines = ok(runner.invoke(args=["courses", "list"]))
    assert lines == ["Elsewhere\t0 members\t1 jobs", "Thai 102\t1 members\t0 jobs"]
    with app.app_context():
        assert sorted(db.session.scalars(sa.select(Course.name))) == ["Elsewhere", "Thai 102"]


def test_jobs_rename(app, runner, factory):
    job = factory.job("A", title="Old", lessons=0)
    assert "now 'New title'" in ok(runner.invoke(args=["jobs", "rename", job.id, "  New   title "]))[-1]
    assert "now 'Video " in ok(runner.invoke(args=["jobs", "rename", job.id, ""]))[-1]
    refused(runner.invoke(args=["jobs", "rename", job.id, "x" * 201]), "at most 200")
    refused(runner.invoke(args=["jobs", "rename", "not-a-job", "X"]), "no job with id")
    with app.app_context():
        assert db.session.get(VideoJob, uuid.UUID(job.id)).title == f"Video {job.video_id}"


@pytest.mark.parametrize("group", ["users", "courses"])
def test_help_lists_the_commands(runner, group):
    output = ok(runner.invoke(args=[group, "--help"]))
    text = "\n".join(output)
    wanted = (
        ["invite", "set-role", "password-link", "deactivate", "activate", "list"]
        if group == "users"
        else ["create", "rename", "add-member", "remove-member", "list"]
    )
    assert all(name in text for name in wanted)


def test_tokens_revoke_all(client, runner, factory):
    factory.user("ann@example.com")
    token = factory.token("ann@example.com")
    assert client.get("/api/jobs", headers=bearer(token)).status_code == 200
    assert ok(runner.invoke(args=["tokens", "revoke-all", "ann@example.com"]))[-1] == (
        "1 API token of ann@example.com revoked."
    )
    assert client.get("/api/jobs", headers=bearer(token)).status_code == 401
    refused(runner.invoke(args=["tokens", "revoke-all", "nobody@example.com"]), "no user with email")
