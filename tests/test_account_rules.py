"""What accounts accept, and the sentences that say what they refuse: email addresses, new
passwords and course names, the same from the pages, the API and the command line."""

from __future__ import annotations

import pytest

from webapp.services import accounts


@pytest.mark.parametrize(
    ("email", "saved"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("o'brien+lessons@mail.example.ac.th", "o'brien+lessons@mail.example.ac.th"),
        ("x@localhost.localdomain", "x@localhost.localdomain"),
    ],
)
def test_email_addresses_people_have_are_accepted(email, saved):
    assert accounts.check_email(email) == saved


@pytest.mark.parametrize(
    "email",
    [
        "bob",
        "<b>x</b>@example.com",
        "a@b",
        "a@@example.com",
        "a b@example.com",
        "a@exa mple.com",
        "@example.com",
        "a@",
        "a@.example.com",
        "a@example..com",
        "a@-example.com",
        "a@example.com.",
        'say"hi"@example.com',
        "x" * 250 + "@example.com",
    ],
)
def test_what_is_not_an_email_address_is_refused_in_a_sentence(email):
    with pytest.raises(ValueError) as refused:
        accounts.check_email(email)
    message = str(refused.value)
    assert message.startswith("“") and message.endswith("” is not an email address.")  # no Python repr


@pytest.mark.parametrize(
    ("password", "words"),
    [("        ", "only spaces"), ("\t\t\t\t \n  ", "only spaces"), ("short", "at least 8 characters")],
)
def test_a_password_of_spaces_or_too_short_is_refused(password, words):
    with pytest.raises(ValueError) as refused:
        accounts.check_new_password(password)
    assert words in str(refused.value) and str(refused.value)[0].isupper()
    assert accounts.check_new_password("  pass phrase  ") == "  pass phrase  "  # spaces inside are fine


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_a_course_needs_a_name(name):
    with pytest.raises(ValueError, match=r"^Enter a course name\.$"):
        accounts.check_course_name(name)
    with pytest.raises(ValueError, match=r"^Course names have at most 120 characters\.$"):
        accounts.check_course_name("x" * 121)
