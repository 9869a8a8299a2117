"""Courses, the teams users belong to: creating, renaming, members. Administrators only.

Every function takes the acting user; None is the command line, which may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Course, User, VideoJob, course_members
from .accounts import check_course_name, course_named
from .user_admin import require_admin


@dataclass(frozen=True)
class CourseRow:
    """A course as the courses list shows it."""

    course: Course
    members: int
    jobs: int


def list_courses() -> list[CourseRow]:
    """Every course, by name, with how many members and jobs it has (one query)."""
    members = (
        sa.select(sa.func.count())
        .select_from(course_members)
        .where(course_members.c.course_id == Course.id)
        .scalar_subquery()
    )
    jobs = sa.select(sa.func.count()).select_from(VideoJob).where(VideoJob.course_id == Course.id)
    query = sa.select(Course, members, jobs.scalar_subquery()).order_by(Course.name)
    return [CourseRow(course, m, j) for course, m, j in db.session.execute(query)]


def all_courses() -> list[Course]:
    return list(db.session.scalars(sa.select(Course).order_by(Course.name)))


def get_course(course_id: int) -> Course | None:
    """The course with its members loaded."""
    query = sa.select(Course).where(Course.id == course_id).options(selectinload(Course.members))
    return db.session.scalars(query).one_or_none()


def _commit_name(name: str) -> None:
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # the same name saved by someone else a moment ago
        db.session.rollback()
        raise ValueError(f"A course named “{name}” already exists.") from exc


def create_course(actor: User | None, name: str) -> Course:
    """A new course (names are unique: at most 120 characters)."""
    require_admin(actor)
    name = check_course_name(name)
    if course_named(name) is not None:
        raise ValueError(f"A course named “{name}” already exists.")
    course = Course(name=name)
    db.session.add(course)
    _commit_name(name)
    return course


def rename_course(actor: User | None, course: Course, name: str) -> Course:
    """Give a course a new name that no other course has."""
    require_admin(actor)
    name = check_course_name(name)
    if name == course.name:
        return course
    other = course_named(name)  # the same course under another letter case may be renamed so
    if other is not None and other.id != course.id:
        raise ValueError(f"A course named “{name}” already exists.")
    course.name = name
    _commit_name(name)
    return course


def add_member(actor: User | None, course: Course, user: User) -> bool:
    """Make the user a member of the course; False if they already were."""
    require_admin(actor)
    if course in user.courses:
        return False
    user.courses.append(course)
    db.session.commit()
    return True


def remove_member(actor: User | None, course: Course, user: User) -> bool:
    """Take the user out of the course (they lose its jobs at once); False if they were not in it."""
    require_admin(actor)
    if course not in user.courses:
        return False
    user.courses.remove(course)
    db.session.commit()
    return True
