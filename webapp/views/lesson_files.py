"""A lesson's files page: what the lesson holds, and one file replaced or added at a time
(services/lesson_files.py), for staff who fix a picture or record a narration again without
making a zip (on a phone too); and its words page: titles, texts and captions edited in place
(services/lesson_words.py)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from ..services import access, lesson_files, lesson_words, renders, storage, word_fields
from ..services.packages import PackageError
from . import forms
from .filters import counted_from_one, duration

bp = Blueprint("lesson_files", __name__)
URL_SECONDS = 300  # a presigned download link's life (object storage)


@bp.get("/jobs/<job_id>/lessons/<int(max=999999):number>/files")
@login_required
def page(job_id: str, number: int):
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    files, refusal = [], None
    try:
        if not lesson.missing:
            files = lesson_files.listing(lesson, Path(current_app.config["LESSONS_ROOT"]))
    except PackageError as exc:  # a lesson folder that leads out of the lessons folder
        refusal = exc.message
    busy = lesson_files.being_rendered(job, lesson)
    return render_template(
        "lesson_files.html", job=job, lesson=lesson, files=files, busy=busy, refusal=refusal
    )


@bp.get("/jobs/<job_id>/lessons/<int(max=999999):number>/files/<path:file_path>")
@login_required
def download(job_id: str, number: int, file_path: str):
    """One file of the lesson, always saved as a file (never shown in the page: a lesson's HTML or
    SVG file must not run as this site)."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    try:
        source = lesson_files.file_source(lesson, file_path, Path(current_app.config["LESSONS_ROOT"]))
    except PackageError as exc:
        abort(404, description=exc.message)
    return file_download(source, file_path)


def file_download(source: lesson_files.Source, file_path: str):
    """One file of a lesson as a download (page and API): always an attachment, with its etag (the
    If-Match of a change to it); from a store, a short-lived link to it."""
    name = file_path.rsplit("/", 1)[-1]
    if isinstance(source.where, Path):
        response = send_file(
            source.where,
            mimetype="application/octet-stream",
            as_attachment=True,
            download_name=name,
            etag=source.etag,
        )
    else:
        url = storage.store().url(
            source.where,
            expires=URL_SECONDS,
            filename=name,
            mimetype="application/octet-stream",
            attachment=True,
        )
        response = redirect(url, 302)
        response.set_etag(source.etag)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/jobs/<job_id>/lessons/<int(max=999999):number>/files/remove")
@login_required
def remove(job_id: str, number: int):
    """A file lesson.json does not use (a stray upload) taken out of the lesson."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    form = forms.RemoveLessonFileForm()
    if form.validate():
        try:
            changed = lesson_files.remove_file(
                job, lesson, form.path.data, Path(current_app.config["LESSONS_ROOT"])
            )
        except PackageError as exc:
            flash(f"Nothing changed: {counted_from_one(exc.message)}", "error")
        else:
            flash(f"Removed {changed.path}.", "info")
    else:
        flash(form.path.errors[0] if form.path.errors else "The form was not valid.", "error")
    return redirect(url_for("lesson_files.page", job_id=job.id, number=number))


@bp.post("/jobs/<job_id>/lessons/<int(max=999999):number>/files")
@login_required
def put(job_id: str, number: int):
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    back = redirect(url_for("lesson_files.page", job_id=job.id, number=number))
    form = forms.LessonFileForm()
    if not form.validate():
        flash((form.file.errors or form.path.errors or ["The form was not valid."])[0], "error")
        return back
    upload = form.file.data
    try:
        changed = lesson_files.put_file(
            job,
            lesson,
            form.path.data,
            upload.stream,
            Path(current_app.config["LESSONS_ROOT"]),
            file_name=upload.filename,
        )
    except PackageError as exc:
        flash(f"Nothing changed: {counted_from_one(exc.message)}", "error")
        return back
    done = f"{'Added' if changed.added else 'Replaced'} {changed.path}."
    if changed.problem:
        flash(f"{done} The lesson still has a problem: {counted_from_one(changed.problem)}", "warning")
    else:
        flash(
            f"{done} The lesson checks out: {lesson.title}, {duration(lesson.duration)}. "
            "Generate its video to show the change.",
            "info",
        )
    return back


@bp.get("/jobs/<job_id>/lessons/<int(max=999999):number>/words")
@login_required
def words(job_id: str, number: int):
    job = access.get_job_or_404(job_id, current_user)
    return _words_page(job, lesson_files.lesson_or_404(job, number))


def _words_page(job, lesson, refusal: PackageError | None = None):
    """The words form as lesson.json has them now; after a refusal, with the edits sent filled in
    (or, when the lesson's segments changed meanwhile, listed to copy) and the fields at fault marked."""
    try:
        shown = lesson_words.read(lesson, Path(current_app.config["LESSONS_ROOT"]))
        unreadable = None
    except PackageError as exc:
        shown, unreadable = None, exc.message
    after = lesson_words.after_refusal(refusal, request.form)
    page = render_template(
        "lesson_words.html",
        job=job,
        lesson=lesson,
        words=shown,
        unreadable=unreadable,
        typed=after.typed,
        to_copy=after.to_copy,
        marked=after.marked,
        refusal=counted_from_one(word_fields.in_words(refusal.message)) if refusal else None,
        busy=lesson_files.being_rendered(job, lesson),
    )
    return page, refusal.status if refusal else 200


@bp.post("/jobs/<job_id>/lessons/<int(max=999999):number>/words")
@login_required
def save_words(job_id: str, number: int):
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    try:
        saved = lesson_words.save(job, lesson, Path(current_app.config["LESSONS_ROOT"]), request.form)
    except PackageError as exc:  # the page again, with what was typed: nothing typed is lost
        return _words_page(job, lesson, refusal=exc)
    changed, first = saved.changed, saved.first_segment
    anchor = f"segment-{first}" if first else None
    back = redirect(url_for("lesson_files.words", job_id=job.id, number=number, _anchor=anchor))
    said = "Nothing was changed." if changed is None else "Saved."
    if saved.merged:
        said = "Saved, with the changes made meanwhile elsewhere in lesson.json kept."
    if changed is not None and changed.problem:
        flash(f"{said} The lesson still has a problem: {counted_from_one(changed.problem)}", "warning")
        return back
    if request.form.get("then") != "generate":
        flash(f"{said} Generate the lesson's video to show the change." if changed else said, "info")
        return back
    try:  # Save and generate: on to the job page, where the render's progress shows
        render = renders.generate(current_user, job, lesson.path)
    except renders.RenderRequestError as exc:
        flash(f"{said} The video was not generated: {exc.message}", "error")
        return back
    flash(f"{said} {render.lesson.title}: render {render.state.value}.", "info")
    return redirect(url_for("pages.job_detail", job_id=job.id))
