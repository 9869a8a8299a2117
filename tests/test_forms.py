"""The browser's forms: a missing or too long field is named next to it, accessibly; what the
services refuse is said above the form; status codes stay those of the pages."""

from __future__ import annotations

import re

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import ApiToken, VideoJob

from .helpers import PASSWORD, csrf_token


def field_error(html: str, name: str) -> str | None:
    """The error shown for a field, if its control is marked invalid and points at it."""
    control = re.search(rf'<(?:input|select)[^>]*\bname="{name}"[^>]*>', html)
    assert control, f"no control named {name}"
    tag = control.group(0)
    if 'aria-invalid="true"' not in tag:
        return None
    described = re.search(r'aria-describedby="([^"]+)"', tag).group(1).split()
    error_id = f"{name}-error"
    assert error_id in described, tag
    return re.search(rf'<small id="{error_id}"[^>]*>([^<]*)</small>', html).group(1)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_new_job_names_each_wrong_field_and_keeps_what_was_typed(app, client, auth, factory):
    auth.login(factory.user(courses=["Course A"]).email)
    form = {"course": "x", "video": "", "title": "T" * 201, "csrf_token": csrf_token(client, "/jobs/new")}
    response = client.post("/jobs", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "course") == "Choose one of your courses."
    assert field_error(html, "video") == "Enter a YouTube URL or video id."
    assert field_error(html, "title") == "Titles have at most 200 characters."
    assert 'role="alert"' in html and "T" * 201 in html
    # The hint stays linked to its field beside the error.
    assert 'aria-describedby="video-error video-help"' in html and 'id="video-help"' in html
    assert count(app, VideoJob) == 0


def test_new_job_field_limits_are_rendered_from_the_form(client, auth, factory):
    auth.login(factory.user(courses=["Course A"]).email)
    html = client.get("/jobs/new").get_data(as_text=True)
    assert re.search(r'<input[^>]*maxlength="200"[^>]*name="title"', html)
    assert re.search(r'<input[^>]*name="video"[^>]*required', html)
    assert "aria-invalid" not in html  # nothing marked before anything was sent
    assert '<label for="video">' in html


def test_a_title_is_measured_as_it_will_be_saved(client, auth, factory):
    """Runs of spaces count once, as the service saves the title."""
    factory.lessons("henIVlCPVIY", count=1, course="Course A")
    auth.login(factory.user(courses=["Course A"]).email)
    page = client.get("/jobs/new").get_data(as_text=True)
    course_id = re.search(r'<option value="(\d+)"[^>]*>Course A</option>', page).group(1)
    title = "a  " * 80  # 240 characters typed, 159 saved
    form = {
        "course": course_id,
        "video": "henIVlCPVIY",
        "title": title,
        "csrf_token": csrf_token(client, "/jobs"),
    }
    response = client.post("/jobs", data=form, follow_redirects=True)
    assert response.status_code == 200 and "a a a" in response.get_data(as_text=True)


def test_service_refusals_stay_above_the_form(client, auth, factory):
    auth.login(factory.user(courses=["Course A"]).email)
    page = client.get("/jobs/new").get_data(as_text=True)
    course_id = re.search(r'<option value="(\d+)"', page).group(1)
    form = {"course": course_id, "video": "https://vimeo.com/1", "csrf_token": csrf_token(client, "/jobs")}
    html = client.post("/jobs", data=form).get_data(as_text=True)
    assert re.search(r'role="alert"[^>]*>Enter a YouTube video id', html)
    assert field_error(html, "video") is None
    assert re.search(rf'<option selected value="{course_id}">', html)  # the choice is kept


def test_password_form_names_wrong_fields_without_checking_a_password(client, auth, factory):
    auth.login(factory.user().email)
    form = {
        "current_password": "",
        "new_password": "short",
        "confirm_password": "x" * 1001,
        "csrf_token": csrf_token(client, "/account"),
    }
    response = client.post("/account/password", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "current_password") == "Enter your current password."
    assert field_error(html, "new_password") == "Passwords must have at least 8 characters."
    assert field_error(html, "confirm_password") == "Passwords have at most 1000 characters."
    assert "x" * 1001 not in html  # passwords are never sent back
    # What only the service knows is said above the form, as before.
    form = {
        **form,
        "current_password": PASSWORD,
        "new_password": "long enough",
        "confirm_password": "other one",
    }
    html = client.post("/account/password", data=form).get_data(as_text=True)
    assert "The new password and its confirmation differ." in html
    assert field_error(html, "confirm_password") is None


def test_token_name_too_long_is_a_field_error(app, client, auth, factory):
    auth.login(factory.user().email)
    token = csrf_token(client, "/account/tokens")
    response = client.post("/account/tokens", data={"name": "n" * 101, "csrf_token": token})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "name") == "Token names have at most 100 characters."
    assert count(app, ApiToken) == 0
    # Spaces are counted as the token will be named: one between words.
    created = client.post(
        "/account/tokens", data={"name": "LMS    sync " * 9, "csrf_token": token}, follow_redirects=True
    )
    assert created.status_code == 200 and "lvt_" in created.get_data(as_text=True)
    assert 'value="LMS' not in created.get_data(as_text=True)  # the form is empty again
    assert "LMS sync LMS sync" in created.get_data(as_text=True)


def test_login_with_a_missing_field_says_so_at_the_field(client, factory):
    user = factory.user()
    form = {"email": user.email, "password": "", "csrf_token": csrf_token(client)}
    response = client.post("/login", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Wrong email or password." not in html and "Please correct the fields marked below." in html
    assert field_error(html, "password") == "Enter your password."
    assert f'value="{user.email}"' in html


def test_forms_read_the_form_body_only(client, factory):
    """A JSON body (with a valid CSRF header) is not a login form: refused, never a server error."""
    user = factory.user()
    token = csrf_token(client)
    for body in ({"email": user.email, "password": PASSWORD}, ["a", "b"], {"email": 5}):
        response = client.post("/login", json=body, headers={"X-CSRFToken": token})
        assert response.status_code == 422, body  # the form fields are empty
    assert client.get("/jobs").status_code == 302


def test_webhook_url_and_lesson_number_refusals_are_sentences(app, client, auth, factory):
    import io

    user = factory.user(courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    auth.login(user.email)
    token = csrf_token(client, "/webhooks")
    long_url = "https://hooks.example.com/" + "x" * 2000
    page = client.post("/webhooks", data={"csrf_token": token, "url": long_url})
    assert page.status_code == 422
    assert field_error(page.get_data(as_text=True), "url") == "Webhook URLs have at most 2000 characters."
    upload = client.post(
        f"/jobs/{job.id}/lessons",
        data={"csrf_token": token, "lesson": "1e3", "package": (io.BytesIO(b"PK"), "l.zip")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Enter the lesson number as a whole number, such as 3." in upload.get_data(as_text=True)
