"""Whose a video's lesson material is: the course of its job; the course whose deleted job
released it (released_videos); or the course its pipeline named in <videoId>/course.txt. Staff
of another course neither claim, see nor replace it; an administrator decides."""

from __future__ import annotations

from ..extensions import db
from ..models import Course, ReleasedVideo, User
from . import access, accounts, lessons
from .errors import JobError


class VideoHeld(JobError):
    """The video's job was deleted in a course the caller is not in: its lesson folders are still
    that course's. Names no course."""

    status = 409

    def __init__(self, video_id: str):
        super().__init__(
            f"Video {video_id}'s lessons belong to another course. "
            "An administrator can create its job in your course."
        )


class MaterialUnclaimed(JobError):
    """Lesson material already on disk, put there outside the app (by the pipeline), not marked
    for the caller's course: whose it is, an administrator decides. Names no course."""

    status = 409

    def __init__(self, video_id: str):
        super().__init__(
            f"Video {video_id}'s lesson material is already in the lessons folder and is not marked "
            f"for this course ({video_id}/{lessons.COURSE_FILE} names the course it was made for). "
            "An administrator can create its job in your course."
        )


MARKED_ELSEWHERE = (
    "The lesson material in {}/ of the lessons folder is marked for another course (its course.txt): "
    "this job neither shows nor replaces it. An administrator can move the job to that course."
)


def take_back(user: User | None, video_id: str) -> bool:
    """A released video may become a job again by its course's staff and administrators (and
    the CLI); the record goes with the new job (a later delete makes a new one). True: it was."""
    released = db.session.get(ReleasedVideo, video_id)
    if released is None:
        return False
    course = db.session.get(Course, released.course_id)
    if user is not None and not user.is_admin and not access.can_use_course(user, course):
        raise VideoHeld(video_id)
    db.session.delete(released)
    return True


def refuse_unclaimed(found: lessons.Discovery, course: Course, video_id: str) -> None:
    """Staff start a video with no material yet, or material marked for their course."""
    if found.material and not (found.course and marked_for(found.course, course)):
        raise MaterialUnclaimed(video_id)


def marked_for(name: str | None, course: Course) -> bool:
    """A video folder's course.txt (its first line, `name`) leaves it to `course`: it names no
    course, or this one (letter case aside). A job of another course neither sees nor replaces
    material marked for a course (it may have been started before the material came)."""
    if not name:
        return True
    marked = accounts.course_named(name)
    return marked is not None and marked.id == course.id
