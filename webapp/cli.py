"""Commands operators and scripts depend on: users, tokens, jobs, demo, worker, cron, redis.

Commands that print a value for scripts print it alone on their last line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app, url_for
from flask.cli import AppGroup, with_appcontext

from . import embedded_redis, queue, readiness
from .extensions import db
from .models import Role, VideoJob
from .services import access, accounts, courses, demo, jobs, messages, tokens, user_admin


class ServiceGroup(AppGroup):
    """Commands that call the services, which refuse with ValueError (the message is for the
    user): the command then says why and exits 1, as a page would answer 4xx."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc


users_cli = ServiceGroup("users", help="Manage user accounts.")
tokens_cli = ServiceGroup("tokens", help="Manage personal API tokens.")
jobs_cli = ServiceGroup("jobs", help="Manage video jobs.")
courses_cli = ServiceGroup("courses", help="Manage courses and their members.")
redis_cli = AppGroup("redis", help="Control the embedded Redis (used when REDIS_URL is not set).")


@users_cli.command("create")
@click.argument("email")
@click.option(
    "--password",
    help="The password (seen by anyone who can list processes: prefer the prompt or --password-stdin).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--role", type=click.Choice([r.value for r in Role]), help="Default for a new user: staff.")
@click.option("--course", "courses", multiple=True, help="Course to join (created if missing); repeatable.")
def create_user(
    email: str, password: str | None, password_stdin: bool, role: str | None, courses: tuple[str, ...]
):
    """Create a user, or update an existing one (never a duplicate).

    A new user's password is asked for (hidden, twice) unless given; an existing user keeps
    theirs unless a new one is given, which ends all their sessions."""
    if password_stdin:
        if password is not None:
            raise click.UsageError("give --password or --password-stdin, not both")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on stdin")
    elif password is None and accounts.find_user(email) is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    new_courses = [name for name in courses if accounts.course_named(name) is None]
    user = user_admin.save_user(email, password, Role(role) if role else None, list(courses))
    for name in new_courses:  # said, so that a misspelt course is seen
        click.echo(f"New course: {name.strip()}")
    names = ", ".join(c.name for c in user.courses) or "no courses"
    click.echo(f"{user.email} ({user.role}) in {names}")


@users_cli.command("deactivate")
@click.argument("email")
def deactivate_user(email: str):
    """Refuse the user from now on: every session, remembered browser and token stops working."""
    user = user_admin.set_active(email, False)
    click.echo(f"{user.email} is deactivated; their sessions have ended and their API tokens are revoked.")


@users_cli.command("activate")
@click.argument("email")
def activate_user(email: str):
    """Let a deactivated user log in again."""
    user = user_admin.set_active(email, True)
    click.echo(f"{user.email} is active.")


@users_cli.command("list")
def list_users():
    """Every user: email, role, active or not, courses (tab-separated)."""
    for user in user_admin.list_users():
        state = "active" if user.active else "deactivated"
        if not user.has_password:
            state += ", no password yet"
        names = ", ".join(c.name for c in user.courses) or "-"
        click.echo(f"{user.email}\t{user.role}\t{state}\t{names}")


URL_OPTION = click.option(
    "--url", help="Where the app is served (e.g. https://videos.example.com), to print a whole link."
)


def _set_password_link(token: str, url: str | None) -> str:
    with current_app.test_request_context(base_url=url or "http://localhost/"):
        return url_for("invites.set_password_page", token=token, _external=bool(url))


@users_cli.command("invite")
@click.argument("email")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default=Role.STAFF.value, show_default=True
)
@click.option("--course", "course_names", multiple=True, help="An existing course to join; repeatable.")
@URL_OPTION
def invite_user(email: str, role: str, course_names: tuple[str, ...], url: str | None):
    """Create a user without a password; prints, last, the one-time link to choose one (7 days)."""
    found = [_course_named(name) for name in course_names]
    user, token = user_admin.invite_user(None, email, Role(role), found)
    names = ", ".join(c.name for c in user.courses) or "no courses"
    click.echo(f"{user.email} ({user.role}) invited, in {names}.")
    click.echo("Their set-password link (works once, for 7 days):")
    click.echo(_set_password_link(token, url))


@users_cli.command("password-link")
@click.argument("email")
@URL_OPTION
def password_link(email: str, url: str | None):
    """Replace a user's password with a new one-time set-password link (printed last).

    Their current password and earlier links stop working, and every session of theirs ends."""
    user = _user_with_email(email)
    token = user_admin.new_set_password_link(None, user)
    click.echo(f"New set-password link for {user.email} (works once, 7 days):")
    click.echo(_set_password_link(token, url))


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice([r.value for r in Role]))
def set_role(email: str, role: str):
    """Make a user an administrator (admin) or staff."""
    user = _user_with_email(email)
    user_admin.set_role(None, user, Role(role))
    click.echo(f"{user.email} is {user.role}.")


def _user_with_email(email: str):
    user = accounts.find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", default="CLI token", show_default=True)
def create_token(email: str, name: str):
    """Create a personal API token; the token is printed once, on the last line."""
    user = accounts.find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    token, plain = tokens.create_api_token(user, name)
    click.echo(f"Token '{token.name}' for {user.email} (shown only now):")
    click.echo(plain)


@tokens_cli.command("revoke-all")
@click.argument("email")
def revoke_tokens(email: str):
    """Revoke every API token of a user (an account that may have been taken over)."""
    user = accounts.find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    revoked = user_admin.revoke_api_tokens(None, user)
    click.echo(f"{messages.plural(revoked, 'API token')} of {user.email} revoked.")


@jobs_cli.command("create")
@click.option("--course", required=True, help="Name of an existing course.")
@click.option("--video", required=True, help="YouTube video id or URL.")
@click.option("--title", help="Default: 'Video <id>'.")
def create_job(course: str, video: str, title: str | None):
    """Create a job and scan its lessons; the job id is printed on the last line.

    Exits with 1 when the video already has a job (a video belongs to one job)."""
    found = _course_named(course)
    job = jobs.create_job(None, found, video, title, Path(current_app.config["LESSONS_ROOT"]))
    click.echo(f"Job '{job.title}' for video {job.video_id}: {messages.plural(len(job.lessons), 'lesson')}.")
    click.echo(str(job.id))


@jobs_cli.command("move")
@click.argument("job_id")
@click.option("--course", required=True, help="Name of the course to give the job to.")
def move_job(job_id: str, course: str):
    """Give a job, with its lessons, renders and videos, to another course."""
    job = _job(job_id)
    jobs.move_job(None, job, _course_named(course))
    click.echo(f"Job {job.id} now belongs to {course}.")


@jobs_cli.command("delete")
@click.argument("job_id")
@click.option("--delete-videos", is_flag=True, help="Also delete the finished videos' files.")
def delete_job(job_id: str, delete_videos: bool):
    """Delete a job with its lessons and render history; renders in progress are cancelled."""
    job = _job(job_id)
    jobs.delete_job(job, delete_videos=delete_videos)
    click.echo(f"Job {job_id} deleted.")


@jobs_cli.command("rename")
@click.argument("job_id")
@click.argument("title")
def rename_job(job_id: str, title: str):
    """Give a job a new title (empty: "Video <id>")."""
    job = jobs.rename_job(_job(job_id), title)
    click.echo(f"Job {job.id} is now '{job.title}'.")


@courses_cli.command("list")
def list_courses():
    """Every course: name, members, jobs (tab-separated)."""
    for row in courses.list_courses():
        click.echo(f"{row.course.name}\t{row.members} members\t{row.jobs} jobs")


@courses_cli.command("create")
@click.argument("name")
def create_course(name: str):
    """Create a course (names are unique)."""
    course = courses.create_course(None, name)
    click.echo(f"Course {course.name} created.")


@courses_cli.command("rename")
@click.argument("name")
@click.argument("new_name")
def rename_course(name: str, new_name: str):
    """Give a course a new name."""
    course = courses.rename_course(None, _course_named(name), new_name)
    click.echo(f"Course {name} is now {course.name}.")


@courses_cli.command("add-member")
@click.argument("name")
@click.argument("email")
def add_member(name: str, email: str):
    """Make a user a member of a course."""
    course, user = _course_named(name), _user_with_email(email)
    added = courses.add_member(None, course, user)
    click.echo(f"{user.email} {'is now' if added else 'was already'} a member of {course.name}.")


@courses_cli.command("remove-member")
@click.argument("name")
@click.argument("email")
def remove_member(name: str, email: str):
    """Take a user out of a course: they lose its jobs at once."""
    course, user = _course_named(name), _user_with_email(email)
    removed = courses.remove_member(None, course, user)
    click.echo(f"{user.email} {'is no longer' if removed else 'was not'} a member of {course.name}.")


def _course_named(name: str):
    found = jobs.find_course(name)
    if found is None:
        raise click.ClickException(f"no course named {name!r} (create it with: flask courses create NAME)")
    return found


def _job(job_id: str):
    job_uuid = access.parse_uuid(job_id)
    job = db.session.get(VideoJob, job_uuid) if job_uuid else None
    if job is None:
        raise click.ClickException(f"no job with id {job_id}")
    return job


@click.command("demo")
@click.option("--url", help="Where the app will be served, to print where to log in.")
@click.option("--first-video", is_flag=True, help="Queue lesson 1's render if nothing was rendered yet.")
@with_appcontext
def demo_command(url: str | None, first_video: bool):
    """Create (or reuse) demo data: a course, an admin, a token and a job with real lessons.

    The last line is JSON: {"jobId", "email", "password", "token"}."""
    result = demo.ensure_demo(current_app)
    if first_video and demo.queue_first_video(result["jobId"]):
        click.echo(
            "  Lesson 1 is queued: it renders as soon as the worker starts and plays on the demo job's page."
        )
    if url:
        url = url.rstrip("/")
        click.echo(f"\n  Lesson videos is starting on {url}/")
        click.echo(f"  Log in as {result['email']} with password {result['password']}")
        click.echo(f"  Demo job:  {url}/jobs/{result['jobId']}")
        click.echo(f"  API token: {result['token']}")
        click.echo("  Ctrl-C stops everything.\n")
    else:
        click.echo(f"Demo job {result['jobId']} with lessons under {current_app.config['LESSONS_ROOT']}")
    click.echo(json.dumps(result))


LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--log-level", type=LOG_LEVELS, default="INFO", show_default=True)
@click.option(
    "--queue",
    "queue_names",
    multiple=True,
    help=f"Queue to work (repeatable), first listed first. Default: {', '.join(queue.ALL_QUEUES)}.",
)
@with_appcontext
def worker_command(burst: bool, log_level: str, queue_names: tuple[str, ...]):
    """Run an RQ worker in this app's context."""
    from rq import Queue, Worker

    log_level = log_level.upper()
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    names = queue_names or queue.ALL_QUEUES
    _ready_to_work(renders=queue.RENDER_QUEUE in names)
    engine = db.engine
    # The work horse is a fork: it must not share the parent's database connections.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    conn = queue.worker_connection()
    worker = Worker([Queue(name, connection=conn) for name in names], connection=conn)
    # The scheduler runs delayed retries (Retry with an interval).
    worker.work(burst=burst, with_scheduler=True, logging_level=log_level)


@click.command("cron")
@click.option("--log-level", type=LOG_LEVELS, default="INFO", show_default=True)
@with_appcontext
def cron_command(log_level: str):
    """Run RQ's cron scheduler: periodic housekeeping such as finding lost renders."""
    from rq.cron import CronScheduler

    from . import tasks

    _ready_to_work(renders=False)
    scheduler = CronScheduler(connection=queue.worker_connection(), logging_level=log_level.upper())
    tasks.register_cron(scheduler, current_app)
    scheduler.start()


def _ready_to_work(renders: bool) -> None:
    """Refuse to start a worker that cannot work (readiness.worker_refusal): one without
    DATABASE_URL took renders from the shared Redis into its own empty SQLite and failed them."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its "Context impl …" at each check
    refusal = readiness.worker_refusal(renders)
    if refusal:
        raise click.ClickException(f"not starting: {refusal}")
    for warning in readiness.warnings():
        logging.getLogger("webapp.worker").warning(warning)


@redis_cli.command("start")
def redis_start():
    """Start the embedded Redis and print its URL."""
    if current_app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is set: there is no embedded Redis to start.")
    click.echo(embedded_redis.ensure_running(current_app.instance_path))


@redis_cli.command("stop")
def redis_stop():
    """Stop the embedded Redis (it saves its data first)."""
    if embedded_redis.stop(current_app.instance_path):
        click.echo("embedded Redis stopped")
    else:
        click.echo("embedded Redis was not running")


def init_app(app: Flask) -> None:
    for command in (
        users_cli,
        courses_cli,
        tokens_cli,
        jobs_cli,
        redis_cli,
        demo_command,
        worker_command,
        cron_command,
    ):
        app.cli.add_command(command)
