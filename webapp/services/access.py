"""Course scope: a user sees jobs of the courses they belong to; admins see all."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from werkzeug.exceptions import NotFound

from ..extensions import db
from ..models import Course, User, VideoJob, course_members
from . import principals
from .errors import Unprocessable


def course_ids(user: User) -> sa.Select | None:
    """A subquery of the course ids the user may act on; None for an admin (all)."""
    if user.is_admin:
        return None
    return sa.select(course_members.c.course_id).where(course_members.c.user_id == user.id)


def scope_jobs(query: sa.Select, user: User) -> sa.Select:
    """Restrict a query over VideoJob to the user's courses."""
    allowed = course_ids(user)
    return query if allowed is None else query.where(VideoJob.course_id.in_(allowed))


def visible_courses(user: User) -> list[Course]:
    query = sa.select(Course).order_by(Course.name)
    allowed = course_ids(user)
    if allowed is not None:
        query = query.where(Course.id.in_(allowed))
    return list(db.session.scalars(query))


def parse_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def get_job(job_id: str | uuid.UUID, user: User) -> VideoJob | None:
    """The job if it exists and is in the user's reach, else None."""
    job_uuid = parse_uuid(job_id)
    if job_uuid is None:
        return None
    query = scope_jobs(sa.select(VideoJob).where(VideoJob.id == job_uuid), user)
    return db.session.scalars(query).one_or_none()


def get_job_or_404(job_id: str | uuid.UUID, user: User) -> VideoJob:
    """The job, or 404 when it does not exist or lies outside the user's courses."""
    job = get_job(job_id, user)
    if job is None:
        raise NotFound("No such video job.")
    return job


def job_in_reach(job_id: uuid.UUID, user: User) -> bool:
    """Whether the job exists and is in the user's reach, as get_job says, answered from what
    this process remembers (principals.py) instead of a query on every poll."""
    course = principals.job_course(job_id)
    return course is not None and (user.is_admin or course in principals.course_ids(user))


def can_use_course(user: User, course: Course) -> bool:
    return user.is_admin or any(c.id == course.id for c in user.courses)


def choose_course(user: User, course_id: int | None) -> Course:
    """The course a new job or webhook goes to: the one named, or the caller's only course."""
    courses = visible_courses(user)
    if course_id is None:
        if len(courses) == 1:
            return courses[0]
        raise Unprocessable(
            "Give courseId: you can use several courses."
            if courses
            else "You are not a member of any course yet."
        )
    course = next((c for c in courses if c.id == course_id), None)
    if course is None:
        raise Unprocessable("courseId is not one of your courses.")
    return course
