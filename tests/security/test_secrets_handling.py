"""Secrets stay out of caches and process lists: the new-token page is never stored, and
`flask users create` asks for the password instead of taking it on the command line."""

from __future__ import annotations

from ..helpers import PASSWORD, csrf_token


def test_page_showing_a_new_token_is_not_stored(client, auth, factory):
    auth.login(factory.user().email)
    response = client.post("/account/tokens", data={"name": "LMS", "csrf_token": csrf_token(client, "/jobs")})
    assert response.status_code == 303
    shown = client.get("/account/tokens")
    assert "lvt_" in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    assert client.get("/account/tokens").headers["Cache-Control"] == "no-store"
    assert client.get("/account").headers["Cache-Control"] == "no-store"


def _can_log_in(app, email, password) -> bool:
    return (
        app.test_client().post("/auth/token", json={"email": email, "password": password}).status_code == 200
    )


def test_users_create_prompts_for_a_hidden_confirmed_password(app, runner):
    result = runner.invoke(args=["users", "create", "new@example.com"], input="s3cret pass\ns3cret pass\n")
    assert result.exit_code == 0, result.output
    assert "s3cret pass" not in result.output  # hidden input is not echoed
    assert "Repeat for confirmation" in result.output
    assert _can_log_in(app, "new@example.com", "s3cret pass")


def test_users_create_refuses_a_mismatched_confirmation(app, runner):
    result = runner.invoke(args=["users", "create", "new@example.com"], input="one password\nanother one\n")
    assert result.exit_code != 0
    assert not _can_log_in(app, "new@example.com", "one password")


def test_users_create_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(
        args=["users", "create", "bot@example.com", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert _can_log_in(app, "bot@example.com", PASSWORD)
    empty = runner.invoke(args=["users", "create", "none@example.com", "--password-stdin"], input="")
    assert empty.exit_code != 0 and "no password on stdin" in empty.output


def test_updating_a_user_needs_no_password(app, runner, factory):
    user = factory.user()
    result = runner.invoke(args=["users", "create", user.email, "--role", "admin"], input="")
    assert result.exit_code == 0 and "(admin)" in result.output
    assert _can_log_in(app, user.email, PASSWORD)
