"""Administering users: roles, activation, invitations, set-password links, revoking tokens.
Administrators only, and always one administrator who can log in left.

Every function takes the acting user; None is the command line, which may do everything.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import Forbidden

from ..extensions import db
from ..models import NO_PASSWORD, ApiToken, Role, User, utcnow
from . import principals
from .accounts import (
    check_email,
    end_sessions,
    find_user,
    get_or_create_course,
    set_new_password,
    set_password_token,
)


def set_active(email: str, active: bool) -> User:
    """Activate or deactivate a user (the command line); deactivating ends every session at once."""
    user = find_user(email)
    if user is None:
        raise ValueError(f"no user with email {email}")
    return set_user_active(None, user, active)


def require_admin(actor: User | None) -> None:
    """Refuse anyone but an administrator (None, the command line, may)."""
    if actor is not None and not actor.is_admin:
        raise Forbidden("Only administrators manage users and courses.")


def list_users() -> list[User]:
    """Every user, by email, with their courses."""
    query = sa.select(User).options(selectinload(User.courses)).order_by(User.email)
    return list(db.session.scalars(query))


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


# Active administrators who can log in (one invited but without a password yet cannot).
_ACTIVE_ADMINS = (User.role == Role.ADMIN, User.active.is_(True), ~User.password_hash.startswith(NO_PASSWORD))


def _lock_admins() -> None:
    """PostgreSQL: hold the active administrators' rows (in id order) until the commit, so two
    changes to them go one after the other (SQLite writes one at a time: see _keep_an_admin)."""
    db.session.execute(sa.select(User.id).where(*_ACTIVE_ADMINS).order_by(User.id).with_for_update())


def _keep_an_admin(user: User) -> None:
    """Once a change to `user` is written (not committed): undo it and refuse it when no active
    administrator would be left, as nobody could administer then. Counted after the write, in
    its transaction: two administrators demoting each other at once both saw the other one."""
    email = user.email
    db.session.flush()
    if not db.session.scalar(sa.select(sa.func.count()).select_from(User).where(*_ACTIVE_ADMINS)):
        db.session.rollback()
        raise ValueError(
            f"{email} is the last active administrator: make someone else an administrator first."
        )


def set_user_active(actor: User | None, user: User, active: bool) -> User:
    """Activate or deactivate a user; deactivating ends every session at once and revokes every
    API token (activating the account again brings none back: someone else may hold one)."""
    require_admin(actor)
    if user.active != active:
        an_admin_goes = user.is_admin and not active
        if an_admin_goes:
            _lock_admins()
        if not active:
            end_sessions(user)
            _revoke_api_tokens(user)
        user.active = active
        if an_admin_goes:
            _keep_an_admin(user)
        db.session.commit()
    return user


def revoke_api_tokens(actor: User | None, user: User) -> int:
    """Revoke every API token of the user (an account that may have been taken over); their
    sessions and password stay. How many were revoked."""
    require_admin(actor)
    revoked = _revoke_api_tokens(user)
    db.session.commit()
    principals.forget(user.id)
    return revoked


def _revoke_api_tokens(user: User) -> int:
    unrevoked = (ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    result = db.session.execute(sa.update(ApiToken).where(*unrevoked).values(revoked_at=utcnow()))
    return result.rowcount


def set_role(actor: User | None, user: User, role: Role) -> User:
    """Make a user an administrator or staff."""
    require_admin(actor)
    if user.role != role:
        _change_role(user, role)
        db.session.commit()
    return user


def _change_role(user: User, role: Role) -> None:
    """Write the new role (not committed), refused for the last active administrator."""
    an_admin_goes = user.is_admin and user.active and role != Role.ADMIN
    if an_admin_goes:
        _lock_admins()
    user.role = role
    if an_admin_goes:
        _keep_an_admin(user)


def save_user(email: str, password: str | None, role: Role | None = None, courses=()) -> User:
    """The command line's create-or-update: a new user (staff unless `role`), or an existing
    one's role (as set_role: never the last active administrator's), password and courses
    (added to theirs)."""
    email = check_email(email)
    user = find_user(email)
    if user is None:
        if not password:
            raise ValueError("a new user needs a password")
        user = User(email=email, role=role or Role.STAFF, active=True)
        db.session.add(user)
    elif role is not None and user.role != role:
        _change_role(user, role)
    if password:
        set_new_password(user, password)
    for name in courses:
        course = get_or_create_course(name)
        if course not in user.courses:
            user.courses.append(course)
    db.session.commit()
    return user


def invite_user(actor: User | None, email: str, role: Role, courses=()) -> tuple[User, str]:
    """A new user without a password, in the courses given, and the token of the one-time link
    with which they choose one."""
    require_admin(actor)
    email = check_email(email)
    if find_user(email) is not None:
        raise ValueError(f"{email} already has an account.")
    user = User(email=email, role=role, active=True)
    user.clear_password()
    user.courses = list(dict.fromkeys(courses))
    db.session.add(user)
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # invited by someone else a moment ago
        db.session.rollback()
        raise ValueError(f"{email} already has an account.") from exc
    return user, set_password_token(user)


def new_set_password_link(actor: User | None, user: User) -> str:
    """Replace the user's password with a new one-time link: the password stops working, every
    session ends, and any link sent before dies. Not for oneself: it would end the session that
    was to show the link (the account page changes one's own password)."""
    require_admin(actor)
    if actor is not None and actor.id == user.id:
        raise ValueError(
            "Change your own password on your account page: a link would log you out before you saw it."
        )
    user.clear_password()
    end_sessions(user)
    db.session.commit()
    return set_password_token(user)
