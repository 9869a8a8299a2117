"""Tables, their enums and their constraints. Queries and rules live in services."""

from __future__ import annotations

import enum
import secrets
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import UTCDateTime, db


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(enum.StrEnum):
    ADMIN = "admin"
    STAFF = "staff"


class VideoGenerationStatus(enum.StrEnum):
    NOT_STARTED = "not_started"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"


class RenderState(enum.StrEnum):
    QUEUED = "queued"
    RENDERING = "rendering"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (RenderState.QUEUED, RenderState.RENDERING)


ACTIVE_RENDER_STATES = (RenderState.QUEUED, RenderState.RENDERING)
# Files a render may write beside its video, and how they are served.
SIDECAR_KINDS = {"poster": "image/jpeg", "chapters": "text/vtt", "captions": "text/vtt"}


class ErrorKind(enum.StrEnum):
    """Why a render ended without a video (Render.error_kind). The renderer's own error
    classes carry the first five as their `kind`."""

    RENDER = "render"  # the renderer failed for a reason of its own
    MANIFEST = "manifest"  # the lesson is wrong: never retried by itself
    TRANSIENT = "transient"  # storage or I/O: may pass, retried
    ENVIRONMENT = "environment"  # this machine cannot render
    CANCELLED = "cancelled"
    WORKER_LOST = "worker_lost"  # the worker died or went silent: retried
    TIMEOUT = "timeout"  # past RQ's time limit
    QUEUE = "queue"  # RQ dropped the job
    INTERNAL = "internal"  # a bug; the traceback is in the worker's log

    @property
    def retryable(self) -> bool:
        return self in (ErrorKind.TRANSIENT, ErrorKind.WORKER_LOST)

    @classmethod
    def of(cls, value: str) -> ErrorKind:
        """The kind named by a renderer error's `kind`; INTERNAL for one we do not know."""
        try:
            return cls(value)
        except ValueError:
            return cls.INTERNAL


def _values(enum_cls: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_cls]


def _enum(enum_cls: type[enum.Enum], name: str, *, native: bool) -> sa.Enum:
    return sa.Enum(
        enum_cls,
        name=name,
        values_callable=_values,
        native_enum=native,
        validate_strings=True,
        length=20,
    )


# The start of a password hash that stands for "no password yet" (User.clear_password).
NO_PASSWORD = "!"

course_members = sa.Table(
    "course_members",
    db.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("course_id", sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role", native=False), default=Role.STAFF)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every session's id: raising it (password change, deactivation, "log out
    # everywhere") ends every session and remember-me cookie issued before.
    session_version: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

    courses: Mapped[list[Course]] = relationship(
        secondary=course_members, back_populates="members", order_by="Course.name"
    )
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive users cannot log in
        return self.active

    # When this login began (Unix seconds) and its nonce: set when logging in, read back from
    # the session (not columns).
    login_stamp = login_nonce = None  # int | None

    def get_id(self) -> str:
        """The id of a login in its cookies, "<user>:<session version>:<time>:<nonce>" (load_user)."""
        if self.login_stamp is None:  # a new login: its time and nonce, fixed from now on
            self.login_stamp, self.login_nonce = int(time.time()), secrets.randbelow(10**12)
        nonce = f":{self.login_nonce}" if self.login_nonce is not None else ""
        return f"{self.id}:{self.session_version}:{self.login_stamp}{nonce}"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def set_password(self, password: str, method: str = "scrypt") -> None:
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def clear_password(self) -> None:
        """Leave the user without a password until they choose one through a set-password link."""
        # Not werkzeug's "method$salt$hash" form, so no password matches it; random, so a
        # set-password link made before (it embeds a fingerprint of the hash) stops working.
        self.password_hash = NO_PASSWORD + secrets.token_urlsafe(24)

    @property
    def has_password(self) -> bool:
        """False for an invited user (or one sent a new set-password link) until they choose one."""
        return not self.password_hash.startswith(NO_PASSWORD)

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class Course(db.Model):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[User]] = relationship(secondary=course_members, back_populates="courses")

    def __repr__(self) -> str:
        return f"<Course {self.name}>"


class ApiToken(db.Model):
    """A personal bearer token. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters, kept to tell tokens apart on the tokens page.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


# The job's searched columns, with their PostgreSQL trigram operator class.
_TEXT = dict.fromkeys(("title", "video_id"), "gin_trgm_ops")


class VideoJob(db.Model):
    __tablename__ = "video_jobs"
    __table_args__ = (
        # The jobs list from this index alone, at any page: newest first, by course and status, and
        # on SQLite searched by title or video id; PostgreSQL searches by trigrams (pg_trgm).
        sa.Index("ix_video_jobs_listing", "created_at", "id", "course_id", "video_generation_status", *_TEXT),
        sa.Index("ix_video_jobs_search", *_TEXT, postgresql_using="gin", postgresql_ops=_TEXT).ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"), index=True)
    # One job per video: its lesson folder and its videos belong to one course.
    video_id: Mapped[str] = mapped_column(sa.String(64), index=True, unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    video_generation_status: Mapped[VideoGenerationStatus] = mapped_column(
        _enum(VideoGenerationStatus, "video_generation_status", native=True),
        default=VideoGenerationStatus.NOT_STARTED,
        server_default=VideoGenerationStatus.NOT_STARTED.value,
    )
    video_generation_data: Mapped[dict | None] = mapped_column(sa.JSON().with_variant(JSONB(), "postgresql"))

    course: Mapped[Course] = relationship()
    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="job", order_by="Lesson.number", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<VideoJob {self.id} {self.video_id}>"


class ReleasedVideo(db.Model):
    """A deleted job's video: its lesson folders (left on disk) stay with the job's course."""

    __tablename__ = "released_videos"

    video_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lesson(db.Model):
    __tablename__ = "lessons"
    __table_args__ = (sa.UniqueConstraint("job_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("video_jobs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(sa.String(300))  # relative to LESSONS_ROOT: "henIVlCPVIY/lesson_1"
    number: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(300))
    duration: Mapped[float | None]
    problem: Mapped[str | None] = mapped_column(sa.String(500))  # why lesson.json cannot be read
    # The folder was gone at the last scan but renders still refer to the lesson.
    missing: Mapped[bool] = mapped_column(default=False)
    # When an upload last replaced its files: a video rendered before shows the old ones.
    files_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    job: Mapped[VideoJob] = relationship(back_populates="lessons")
    renders: Mapped[list[Render]] = relationship(back_populates="lesson", order_by="Render.attempt")


class Render(db.Model):
    """One attempt to generate one lesson's video; the lasting record of an RQ job."""

    __tablename__ = "renders"
    __table_args__ = (
        # A double click is one render: one active render per lesson and file name.
        sa.Index(
            "uq_renders_active_output",
            "lesson_id",
            "output_file_name",
            unique=True,
            postgresql_where=sa.text("state IN ('queued', 'rendering')"),
            sqlite_where=sa.text("state IN ('queued', 'rendering')"),
        ),
        # Renders by state; the newest finished ones first (estimates.past_speeds).
        sa.Index("ix_renders_state_finished_at", "state", "finished_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("video_jobs.id", ondelete="CASCADE"), index=True)
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    state: Mapped[RenderState] = mapped_column(
        _enum(RenderState, "render_state", native=False), default=RenderState.QUEUED
    )
    rq_job_id: Mapped[str | None] = mapped_column(sa.String(100))
    output_file_name: Mapped[str] = mapped_column(sa.String(100))
    # As the API reports it: "videos/<lessonPath>/<outputFileName>".
    output_path: Mapped[str] = mapped_column(sa.String(500))
    frames_done: Mapped[int] = mapped_column(default=0)
    frames_total: Mapped[int | None]
    # The render's speed over its last few seconds of progress (set by the worker; None before
    # its second progress report): the ETA's rate, free of the set-up time before the first frame.
    frames_per_second: Mapped[float | None]
    error_kind: Mapped[str | None] = mapped_column(sa.String(40))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    attempt: Mapped[int] = mapped_column(default=1)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when someone asks to stop a running render; the worker then stops it.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration: Mapped[float | None]
    size_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Files the renderer wrote beside the video, by kind: {"poster": "NAME.jpg",
    # "chapters": "NAME.chapters.vtt", "captions": "NAME.vtt", "language": "th"} (names only).
    sidecars: Mapped[dict | None] = mapped_column(sa.JSON)

    job: Mapped[VideoJob] = relationship()
    lesson: Mapped[Lesson] = relationship(back_populates="renders")
    requested_by: Mapped[User | None] = relationship()

    @property
    def error(self) -> dict | None:
        """Why the attempt ended without a video: {"kind", "message"}, or None."""
        if not self.error_kind:
            return None
        return {"kind": str(self.error_kind), "message": self.error_message}

    def sidecar_path(self, kind: str) -> str | None:
        """ "videos/<lessonPath>/<file>" of a sidecar ("poster", "chapters", "captions"), if written."""
        name = (self.sidecars or {}).get(kind) if kind in SIDECAR_KINDS else None
        return f"{self.output_path.rsplit('/', 1)[0]}/{name}" if name else None

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None

    @property
    def percent(self) -> float:
        if not self.frames_total:
            return 0.0
        return round(100.0 * min(self.frames_done, self.frames_total) / self.frames_total, 1)


WEBHOOK_EVENTS = ("render.completed", "render.failed", "render.cancelled", "job.completed")


class Webhook(db.Model):
    """An endpoint a course registered to hear about its renders (Standard Webhooks)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    events: Mapped[list] = mapped_column(sa.JSON)
    # The signing key ("whsec_…"): shown once when created; kept to sign every delivery.
    secret: Mapped[str] = mapped_column(sa.String(100))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    course: Mapped[Course] = relationship()


class WebhookMessage(db.Model):
    """One event to tell one endpoint; its id is the webhook-id header of every attempt."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "msg_<hex>"
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(sa.String(40))
    payload: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    webhook: Mapped[Webhook] = relationship()


class WebhookDelivery(db.Model):
    """One attempt to deliver one message: the delivery log."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(
        sa.ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(default=1)
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    message: Mapped[WebhookMessage] = relationship()

    @property
    def event(self) -> str:
        return self.message.event

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
