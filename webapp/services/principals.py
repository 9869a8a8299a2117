"""Who is asking, remembered briefly in this process.

A course team's browsers and integrators' loops poll a job's status several times a second with
the same credentials; checking them (and the asker's courses) in the database on every poll is
most of what a poll costs. So each process remembers, for at most `SECONDS`:

- which user a credential (a bearer token, a session's login id) stands for,
- which courses a user belongs to, and
- which course a job belongs to.

A token revoked, a user deactivated or demoted, a password changed, a membership removed, a job
moved to another course: every process stops honouring the old answer within `SECONDS`; the
process that made the change, at once (its flushes forget what they touched). A deleted job is
caught at once by its status document, which the deletion removes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import make_transient_to_detached

from ..extensions import db
from ..models import ApiToken, Course, User, VideoJob, course_members

SECONDS = 4.0  # under the bound (a revoked token stops working within 5 s), with room for a poll
_MOST = 10_000  # entries per memory; past it the memory starts again (a burst of new askers)


class _Memory:
    """Values kept for at most SECONDS, each with the user it is about."""

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, int, Any]] = {}

    def get(self, key: Any) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() >= entry[0]:
            return None
        return entry[2]

    def put(self, key: Any, user_id: int, value: Any, until: float | None = None) -> None:
        if len(self._entries) >= _MOST:
            self._entries.clear()
        deadline = time.monotonic() + SECONDS
        self._entries[key] = (deadline if until is None else min(deadline, until), user_id, value)

    def forget_key(self, key: Any) -> None:
        self._entries.pop(key, None)

    def forget(self, user_id: int | None = None) -> None:
        """Forget what is known about one user (None: everyone)."""
        if user_id is None:
            self._entries.clear()
            return
        for key in [k for k, entry in list(self._entries.items()) if entry[1] == user_id]:
            self._entries.pop(key, None)


class _Known:
    """What one app (one database) remembers; kept in app.extensions, so that apps (in tests,
    one per test) never see each other's users."""

    def __init__(self) -> None:
        self.credentials = _Memory()  # credential key -> the user's column values
        self.memberships = _Memory()  # user id -> frozenset of course ids
        self.job_courses = _Memory()  # job id -> course id


def _known() -> _Known:
    known = current_app.extensions.get("lvt_principals")
    if known is None:
        known = current_app.extensions["lvt_principals"] = _Known()
    return known


_COLUMNS = tuple(column.key for column in sa.inspect(User).column_attrs)


def user_for(key: str, check: Callable[[], tuple[User, float | None] | None]) -> User | None:
    """The user a credential stands for: remembered, or `check`ed (which returns the user and,
    for a credential that expires, its monotonic deadline; or None when it is not valid)."""
    known = _known()
    values = known.credentials.get(key)
    if values is not None:
        return _attach(values)
    checked = check()
    if checked is None:
        return None
    user, until = checked
    known.credentials.put(key, user.id, {name: getattr(user, name) for name in _COLUMNS}, until)
    return user


def _attach(values: dict) -> User:
    """A User for this request's session, from remembered column values, without a query:
    a copy per session, so no two requests ever share one instance."""
    user = User(**values)
    make_transient_to_detached(user)
    return db.session.merge(user, load=False)


def course_ids(user: User) -> frozenset[int]:
    """The ids of the courses the user belongs to (remembered for SECONDS)."""
    memberships = _known().memberships
    found = memberships.get(user.id)
    if found is None:
        query = sa.select(course_members.c.course_id).where(course_members.c.user_id == user.id)
        found = frozenset(db.session.scalars(query))
        memberships.put(user.id, user.id, found)
    return found


def job_course(job_id: uuid.UUID) -> int | None:
    """The course of a job (remembered for SECONDS: an admin may move a job to another course);
    None when there is no such job."""
    job_courses = _known().job_courses
    course = job_courses.get(job_id)
    if course is None:
        course = db.session.scalar(sa.select(VideoJob.course_id).where(VideoJob.id == job_id))
        if course is not None:
            job_courses.put(job_id, 0, course)
    return course


def forget(user_id: int | None = None) -> None:
    """Forget the credentials and memberships known for a user (None: for everyone)."""
    known = _known()
    known.credentials.forget(user_id)
    known.memberships.forget(user_id)


@sa.event.listens_for(db.session, "after_flush")
def _forget_what_changed(session, _context) -> None:
    """What this process changes it forgets at once; other processes, within SECONDS."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, User):
            forget(obj.id)
        elif isinstance(obj, Course):
            _known().memberships.forget()  # its members changed, or it went
        elif isinstance(obj, ApiToken) and (obj in session.deleted or _changed(obj, "revoked_at")):
            forget(obj.user_id)
        elif isinstance(obj, VideoJob):  # moved to another course, or deleted
            _known().job_courses.forget_key(obj.id)


def _changed(obj, attribute: str) -> bool:
    return sa.inspect(obj).attrs[attribute].history.has_changes()
