"""Server-rendered pages: the jobs list, a job with its lessons, creating a job."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from ..models import VideoGenerationStatus
from ..services import access, events, jobs, messages, renders, summary, uploads
from ..services.packages import PackageError
from . import forms, markdown, panel, rest
from .filters import counted_from_one
from .negotiate import Reply, reply
from .params import MAX_PAGE, query_int

bp = Blueprint("pages", __name__)

# The renderer's bundled Noto fonts, served to browsers too: a machine without a Thai
# font would otherwise show lesson titles as empty boxes. One copy of the files.
fonts = Blueprint(
    "fonts",
    __name__,
    static_folder=str(Path(__file__).resolve().parent.parent / "render" / "fonts"),
    static_url_path="/fonts",
)


def lessons_root() -> Path:
    return Path(current_app.config["LESSONS_ROOT"])


@bp.get("/docs")
def docs():
    """The API's document, for people (no CDN): a guide written in Markdown, then the reference
    rendered here from /openapi.json's content."""
    text = render_template(
        "docs_guide.md", base=request.host_url.rstrip("/"), tokens_url=url_for("auth.tokens")
    )
    guide = markdown.render(text, id_prefix="guide-")
    return render_template("docs.html", spec=rest.document(), guide=guide)


@bp.get("/")
def index():
    return redirect(url_for("pages.jobs"))


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page links: send them to the SVG, for good."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.get("/jobs", endpoint="jobs")
@login_required
def jobs_list():
    course_id = query_int("course", None)
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in VideoGenerationStatus}:
        abort(400, description=f"status must be one of: {', '.join(s.value for s in VideoGenerationStatus)}.")
    search = (request.args.get("q") or "").strip()[:200]
    page = query_int("page", 1, hi=MAX_PAGE)
    result = jobs.list_jobs(
        current_user,
        course_id=course_id,
        status=status,
        search=search,
        page=page,
        per_page=current_app.config["JOBS_PER_PAGE"],
    )
    filters = {"course": course_id, "status": status, "q": search}
    if page > 1 and page > result.pages:  # past the end (jobs went since the link was made)
        kept = {name: value for name, value in filters.items() if value}  # not url_for's _anchor etc.
        return redirect(url_for("pages.jobs", **kept, page=max(1, result.pages)))
    return render_template(
        "jobs.html",
        page=result,
        progress=jobs.live_progress(result.items),
        courses=access.visible_courses(current_user),
        statuses=list(VideoGenerationStatus),
        filters=filters,
    )


@bp.get("/jobs/new")
@login_required
def new_job():
    return render_template("job_new.html", form=forms.JobForm(access.visible_courses(current_user)))


@bp.post("/jobs")
@login_required
def create_job():
    form = forms.JobForm(access.visible_courses(current_user))
    if not form.validate():
        return render_template("job_new.html", form=form), 422
    try:
        job = jobs.create_job(
            current_user, form.chosen_course, form.video.data, form.title.data, lessons_root()
        )
    except jobs.JobError as exc:
        existing = exc.job if isinstance(exc, jobs.VideoTaken) else None
        page = render_template("job_new.html", form=form, error=str(exc), existing=existing)
        return page, exc.status
    # No lessons yet: nothing can be generated until they come (the page says how, below).
    created = f"Job created with {messages.plural(len(job.lessons), 'lesson')}."
    flash(created, "info" if job.lessons else "warning")
    return redirect(url_for("pages.job_detail", job_id=job.id))


@bp.get("/jobs/<job_id>")
@login_required
def job_detail(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    discovery_message = None if job.lessons else jobs.discover(job.video_id, lessons_root()).message
    move_form = (
        forms.MoveJobForm(access.visible_courses(current_user), course=job.course_id)
        if current_user.is_admin
        else None
    )
    kept = events.kept_document(job.id)  # read first: the panel shows at least this version
    return render_template(
        "job.html",
        job=job,
        state=summary.status(job),
        status_version=kept[0] if kept else None,
        discovery_message=discovery_message,
        move_form=move_form,
    )


@bp.post("/jobs/<job_id>/move")
@login_required
def move_job(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    if not current_user.is_admin:
        abort(403, description="Only administrators can move a job to another course.")
    form = forms.MoveJobForm(access.visible_courses(current_user))
    if form.validate():
        jobs.move_job(current_user, job, form.chosen_course)
        flash(f"Job moved to {form.chosen_course.name}.", "info")
    else:
        flash(form.course.errors[0], "error")
    return redirect(url_for("pages.job_detail", job_id=job.id))


@bp.post("/jobs/<job_id>/rename")
@login_required
def rename_job(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    form = forms.RenameJobForm()
    if not form.validate():
        flash(form.title.errors[0], "error")
        return redirect(url_for("pages.job_detail", job_id=job.id))
    try:
        job = jobs.rename_job(job, form.title.data)
    except jobs.JobError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Job renamed to “{job.title}”.", "info")
    return redirect(url_for("pages.job_detail", job_id=job.id))


@bp.post("/jobs/<job_id>/delete")
@login_required
def delete_job(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    form = forms.DeleteJobForm()
    title = job.title
    jobs.delete_job(job, delete_videos=bool(form.delete_videos.data))
    files = "its video files were deleted" if form.delete_videos.data else "its video files were kept"
    flash(
        f"Job “{title}” deleted with its lesson list and render history; "
        f"the lesson folders stay on disk and {files}.",
        "info",
    )
    return redirect(url_for("pages.jobs"))


@bp.post("/jobs/<job_id>/rescan")
@login_required
def rescan(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    result = jobs.rescan_lessons(job, lessons_root())
    if result.message:
        flash(result.message, "warning")
    else:
        flash(
            f"Lessons rescanned: {result.added} new, {result.updated} changed, {result.removed} gone.", "info"
        )
    return redirect(url_for("pages.job_detail", job_id=job.id))


@bp.post("/jobs/<job_id>/lessons")
@login_required
def upload_lessons(job_id: str):
    """A lesson package from the job page (see the API's POST /api/jobs/<id>/lessons)."""
    job = access.get_job_or_404(job_id, current_user)
    form = forms.UploadForm()
    if not form.validate():
        problem = form.package.errors or form.lesson.errors or form.form_errors or ["The form was not valid."]
        return _refused_upload(job, 422, problem[0])
    try:
        installed = uploads.install_package(
            job, form.package.data.stream, lessons_root(), lesson=form.lesson.data
        )
    except PackageError as exc:
        return _refused_upload(job, exc.status, exc.message)
    names = ", ".join(path.rsplit("/", 1)[1] for path in installed.lesson_paths)
    count = len(installed.lesson_paths)
    message = f"Uploaded {count} lesson{'s' if count != 1 else ''}: {names}."
    if reply() is Reply.FRAGMENT:  # the notes outside the panel follow the lessons too
        return render_template("_upload_done.html", job=job, panel_html=Markup(_after_action(job, message)))
    return _after_action(job, message)


def _refused_upload(job, status: int, message: str):
    """htmx gets the refusal as an error (the form says it beside itself and keeps the file and
    number chosen, the panel stays as it is); a plain form post, a message on the job page."""
    message = counted_from_one(message)  # the page counts segments from 1, as its chapters do
    if reply() is Reply.FRAGMENT:
        abort(status, description=message)
    return _after_action(job, message, "error")


def _after_action(job, message: str, category: str = "info", render=None):
    """htmx gets the status panel back with the message in it (a note about `render` goes once
    that render is no longer under way: static/app.js); a plain form post, a redirect."""
    message = counted_from_one(message)  # "segments[1].audio" as the rows say it: "segment 2, audio"
    if reply() is Reply.FRAGMENT:
        return panel.render(job, notice=(category, message, render.id if render is not None else None))
    flash(message, category)
    return redirect(url_for("pages.job_detail", job_id=job.id))


def _job_render_or_404(job, render_id: str):
    render = renders.get_render(render_id, current_user)
    if render is None or render.job_id != job.id:
        abort(404, description="No such render.")
    return render


@bp.post("/jobs/<job_id>/generate")
@login_required
def generate(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    form = forms.GenerateForm()
    try:
        render = renders.generate(current_user, job, form.lesson_path.data)
    except renders.RenderRequestError as exc:
        return _after_action(job, exc.message, "error")
    return _after_action(job, f"{render.lesson.title}: render {render.state.value}.", render=render)


@bp.post("/jobs/<job_id>/generate-all")
@login_required
def generate_all(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    try:
        result = renders.generate_all(current_user, job, missing_only=request.form.get("missing") == "1")
    except renders.RenderRequestError as exc:
        return _after_action(job, exc.message, "error")
    message = f"{messages.plural(len(result.renders), 'lesson')} queued or already in progress."
    if not result.skipped:
        return _after_action(job, message)
    if result.broken:  # each shows its lesson.json error in its row: named here, not repeated
        message += (
            f" Skipped {messages.plural(len(result.broken), 'lesson')} whose lesson.json is not valid: "
            f"{', '.join(result.broken)}."
        )
    others = [(path, reason) for path, reason in result.skipped if path not in result.broken]
    if others:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in others)
        message += f" Skipped {messages.plural(len(others), 'lesson')}: {reasons}"
    return _after_action(job, message, "warning")


@bp.post("/jobs/<job_id>/renders/<render_id>/cancel")
@login_required
def cancel_render(job_id: str, render_id: str):
    job = access.get_job_or_404(job_id, current_user)
    try:
        render = renders.cancel(_job_render_or_404(job, render_id))
    except renders.RenderRequestError as exc:
        return _after_action(job, exc.message, "error")
    if render.state.active:
        return _after_action(job, f"Stopping the render of {render.lesson.title}…", render=render)
    return _after_action(job, f"Render of {render.lesson.title} cancelled.")


@bp.post("/jobs/<job_id>/renders/<render_id>/retry")
@login_required
def retry_render(job_id: str, render_id: str):
    job = access.get_job_or_404(job_id, current_user)
    try:
        render = renders.retry(current_user, _job_render_or_404(job, render_id))
    except renders.RenderRequestError as exc:
        return _after_action(job, exc.message, "error")
    return _after_action(job, f"{render.lesson.title}: attempt {render.attempt} queued.", render=render)
