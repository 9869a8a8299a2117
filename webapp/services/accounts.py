"""Accounts and credentials: passwords, sessions, set-password links, course names (administering
users: user_admin.py; bearer tokens: tokens.py)."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import generate_password_hash

from .. import queue, shared_state
from ..extensions import db
from ..models import Course, User
from . import principals, throttle

log = logging.getLogger(__name__)

# Its own salt: a set-password link is never a bearer token, nor the other way round.
_SET_PASSWORD_SALT = "set-password-link"
# A set-password link works once (choosing the password changes what it was signed for), this long:
SET_PASSWORD_LINK_MAX_AGE = timedelta(days=7)
SET_PASSWORD_LINK_INVALID = (
    "This set-password link is not valid: it was used already, it is older than 7 days, "
    "or a newer link replaced it. Ask an administrator for a new one."
)
DEACTIVATED = "This account is deactivated: ask an administrator to activate it again."


@cache
def _dummy_hash(method: str) -> str:
    # Compared against when the email is unknown, so a miss costs as long as a wrong password.
    return generate_password_hash("not a real password", method=method)


def _hash_method() -> str:
    return current_app.config["PASSWORD_HASH_METHOD"]


def normalize_email(email: str) -> str:
    return email.strip().lower()


COURSE_NAME_MAX = 120
# Tokens a user may hold at once (revoked ones do not count).
PASSWORD_MIN = 8
PASSWORD_MAX = 1000


def check_course_name(name: str) -> str:
    """A course name as saved: trimmed, not empty, at most 120 characters."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Enter a course name.")
    if len(name) > COURSE_NAME_MAX:
        raise ValueError(f"Course names have at most {COURSE_NAME_MAX} characters.")
    return name


def check_new_password(password: str) -> str:
    """A new password: 8 to PASSWORD_MAX characters, not only spaces (kept as typed)."""
    if len(password) < PASSWORD_MIN:
        raise ValueError(f"Passwords must have at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise ValueError(f"Passwords have at most {PASSWORD_MAX} characters.")
    if not password.strip():
        raise ValueError("A password cannot be only spaces.")
    return password


def course_named(name: str) -> Course | None:
    """The course of that name, letter case aside: "Demo course" and "demo course" would be two
    courses nobody can tell apart in a list, so names are unique that way."""
    found = sa.select(Course).where(sa.func.lower(Course.name) == name.strip().lower()).limit(1)
    return db.session.scalars(found).first()


def get_or_create_course(name: str) -> Course:
    """The course of that name (course_named), else a new one."""
    name = check_course_name(name)
    course = course_named(name)
    if course is None:
        course = Course(name=name)
        db.session.add(course)
        db.session.flush()
    return course


# What a browser's <input type=email> accepts (the HTML standard's rule), with a dot in the
# domain: a name@host.domain address, no spaces, quotes or markup.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
EMAIL = re.compile(rf"[a-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")


def check_email(email: str) -> str:
    """An email address as saved: trimmed, lower case, name@host.domain, at most 254 characters."""
    email = normalize_email(email or "")
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise ValueError(f"“{email[:100]}” is not an email address.")
    return email


def set_new_password(user: User, password: str) -> None:
    """Give `user` this new password (checked); an existing user's logins made with the old one end."""
    user.set_password(check_new_password(password), _hash_method())
    if user.id is not None:
        end_sessions(user)


def find_user(email: str) -> User | None:
    return db.session.scalars(sa.select(User).where(User.email == normalize_email(email))).one_or_none()


def authenticate(email: str, password: str) -> User | None:
    """The user with this email and password, else None; a deactivated one too, so the page can
    say so (only to whoever knows the password). Not throttled: see log_in."""
    user = find_user(email or "")
    if user is None or not user.has_password:  # as long as a check: nobody learns which it was
        User(password_hash=_dummy_hash(_hash_method())).check_password(password or "")
        return None
    return user if user.check_password(password or "") else None


def log_in(email: str, password: str, address: str | None) -> User | None:
    """Check a login, counted against the failed-login limit before the password is checked.

    Raises throttle.Throttled when the limit for this account and address is used up. The user
    returned may be deactivated (`active` False): refuse them, saying why.
    """
    limiter = throttle.login_throttle()
    key = f"{throttle.sender(address)}:{normalize_email(email or '')[:254]}"
    limiter.acquire(key)
    user = authenticate(email, password)
    if user is not None:
        limiter.release(key)
    return user


def end_sessions(user: User) -> None:
    """End every session, remember-me cookie and signed token of the user (from the next request)."""
    user.session_version = (user.session_version or 0) + 1


def end_login(user: User) -> None:
    """Log out this one login (the id its session and remember-me cookies carry) on the server:
    remembered in Redis until such a cookie would have expired anyway. With Redis down it is
    logged and the browser's cookies are still cleared."""
    seconds = int(current_app.config["REMEMBER_COOKIE_DURATION"].total_seconds()) + 60
    try:
        shared_state.end_login(user.get_id(), seconds)
    except queue.Unavailable as exc:
        log.warning("logout not recorded user_id=%s error=%s", user.id, exc)
    principals.forget(user.id)


def login_ended(session_id: str) -> bool:
    """Whether that login was logged out (end_login); False when Redis cannot say."""
    try:
        return shared_state.login_ended(session_id)
    except queue.Unavailable as exc:
        log.warning("logout check unavailable error=%s", exc)
        return False


def log_out_everywhere(user: User) -> None:
    end_sessions(user)
    db.session.commit()


def change_password(user: User, current: str, new: str, confirm: str, address: str | None) -> User:
    """Change the user's own password; every other login of the user ends."""
    if new != confirm:
        raise ValueError("The new password and its confirmation differ.")
    check_new_password(new)
    if log_in(user.email, current, address) is None:
        raise ValueError("The current password is wrong.")
    user.set_password(new, _hash_method())
    end_sessions(user)
    db.session.commit()
    return user


def _link_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SET_PASSWORD_SALT)


def set_password_token(user: User) -> str:
    """The token of a set-password link: signed, for this user and their current password hash."""
    return _link_serializer().dumps({"uid": user.id, "pw": password_fingerprint(user)})


def user_for_set_password_token(token: str | None) -> User | None:
    """The active user a set-password link is for, while it is unused and not expired; else None."""
    if not token or len(token) > 500:
        return None
    try:
        data = _link_serializer().loads(token, max_age=int(SET_PASSWORD_LINK_MAX_AGE.total_seconds()))
    except BadSignature:  # SignatureExpired included
        return None
    if not isinstance(data, dict) or type(data.get("uid")) is not int:
        return None
    user = db.session.get(User, data["uid"])
    if user is None or not user.active or data.get("pw") != password_fingerprint(user):
        return None
    return user


def password_fingerprint(user: User) -> str:
    """Changes with the password and with "log out everywhere": what signed links and signed
    bearer tokens are bound to, so either change invalidates every one issued before."""
    material = f"{user.password_hash}:{user.session_version}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


class LinkInvalid(ValueError):
    """A set-password link that is used, expired, replaced, forged or for a deactivated user."""

    def __init__(self):
        super().__init__(SET_PASSWORD_LINK_INVALID)


def set_password_with_link(token: str | None, new: str, confirm: str) -> User:
    """Set the password a set-password link is for; the link works this once."""
    user = user_for_set_password_token(token)
    if user is None:
        raise LinkInvalid()
    if new != confirm:
        raise ValueError("The new password and its confirmation differ.")
    check_new_password(new)
    # Only while the hash is still the one the link was made for: two uses of one link at the
    # same moment set one password, and the other finds the link used.
    changed = db.session.execute(
        sa.update(User)
        .where(User.id == user.id, User.password_hash == user.password_hash)
        .values(
            password_hash=generate_password_hash(new, method=_hash_method()),
            session_version=User.session_version + 1,
        )
    )
    if changed.rowcount != 1:
        db.session.rollback()
        raise LinkInvalid()
    db.session.commit()
    principals.forget(user.id)  # a bulk update: no flush tells principals of it
    db.session.refresh(user)
    return user
