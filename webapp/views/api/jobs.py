"""Jobs: list, create, read, rename, delete, and rescan a job's lesson folders."""

from __future__ import annotations

from flask import current_app, url_for
from flask_login import current_user, login_required

from ...services import access, jobs
from .. import schemas as s
from .blueprint import bp, errors, job_detail, lessons_root, links_to_job


@bp.route("/api/jobs", methods=["GET"])
@login_required
@bp.arguments(s.JobListQuery, location="query")
@bp.response(200, s.JobPage)
@bp.doc(operationId="listJobs")
@errors(400)
def list_jobs(query: dict):
    """List the jobs of your courses, newest first."""
    return jobs.list_jobs(
        current_user,
        course_id=query.get("course"),
        status=query.get("status"),
        search=query.get("q"),
        page=query["page"],
        per_page=query["perPage"],
    )


@bp.route("/api/jobs", methods=["POST"])
@login_required
@bp.arguments(s.CreateJobRequest)
@bp.response(201, s.JobDetailSchema, headers={"Location": {"schema": {"type": "string"}}})
@bp.doc(operationId="createJob", responses={201: {"links": links_to_job("id")}})
@errors(400, 409, 413, 415, 422)
def create_job(body: dict):
    """Create a job for a video and discover its lessons.

    A video that already has a job answers 409, with that job's id when it is in your reach.
    So does a video whose job was deleted in a course you are not in: its lesson folders stay
    with that course (an administrator can create the job in yours); and, for staff, a video
    whose lesson material is already on disk unless its `<videoId>/course.txt` names your course.
    """
    jobs.parse_video_id(body["video"])  # what is wrong with the body is said before the course
    jobs.check_title(body["title"])
    course = access.choose_course(current_user, body["courseId"])
    job = jobs.create_job(current_user, course, body["video"], body["title"], lessons_root())
    return job_detail(job), 201, {"Location": url_for("api.get_job", job_id=job.id)}


@bp.route("/api/jobs/<uuid:job_id>", methods=["GET"])
@login_required
@bp.response(200, s.JobDetailSchema)
@bp.doc(operationId="getJob")
@errors(404)
def get_job(job_id):
    """A job with its lessons and every render attempt."""
    return job_detail(access.get_job_or_404(job_id, current_user))


@bp.route("/api/jobs/<uuid:job_id>", methods=["PATCH"])
@login_required
@bp.arguments(s.RenameJobRequest)
@bp.response(200, s.JobSchema)
@bp.doc(operationId="renameJob")
@errors(400, 404, 413, 415, 422)
def rename_job(body: dict, job_id):
    """Rename a job."""
    return jobs.rename_job(access.get_job_or_404(job_id, current_user), body["title"])


@bp.route("/api/jobs/<uuid:job_id>", methods=["DELETE"])
@login_required
@bp.arguments(s.DeleteJobQuery, location="query")
@bp.response(204)
@bp.doc(operationId="deleteJob")
@errors(400, 404)
def delete_job(query: dict, job_id):
    """Delete a job with its lessons and renders.

    Renders in progress are cancelled. Video files stay unless deleteVideos=true.
    """
    jobs.delete_job(access.get_job_or_404(job_id, current_user), delete_videos=query["deleteVideos"])
    return current_app.response_class(status=204)


@bp.route("/api/jobs/<uuid:job_id>/rescan", methods=["POST"])
@login_required
@bp.response(200, s.RescanResult)
@bp.doc(operationId="rescanJob")
@errors(404)
def rescan_job(job_id):
    """Bring a job's lessons in line with the lesson folders on disk."""
    job = access.get_job_or_404(job_id, current_user)
    result = jobs.rescan_lessons(job, lessons_root())
    return {
        "added": result.added,
        "updated": result.updated,
        "removed": result.removed,
        "message": result.message,
        "job": job_detail(job),
    }
