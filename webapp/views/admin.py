"""Administrators' pages: users (invite, role, deactivate, courses) and courses (create, rename,
members); and the set-password page an invitation links to.

The rules (who may, what is refused) live in services/user_admin.py and services/courses.py,
which the command line calls too.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..models import Role
from ..services import accounts, courses, messages, tokens, user_admin
from . import forms, reveal
from .auth import _start_session

bp = Blueprint("admin", __name__, url_prefix="/admin")
invites = Blueprint("invites", __name__)


@bp.before_request
@login_required
def admins_only():
    if not current_user.is_admin:
        abort(403, description="These pages are for administrators.")


@bp.after_request
@invites.after_request
def no_store(response):
    # Set-password links and people's details: never from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@invites.after_request
def no_referrer(response):
    # This page's URL holds the link's token: the requests it makes (styles, scripts) must not
    # carry it in a Referer header.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _user_or_404(user_id: int):
    user = user_admin.get_user(user_id)
    if user is None:
        abort(404, description="No such user.")
    return user


def _course_or_404(course_id: int):
    course = courses.get_course(course_id)
    if course is None:
        abort(404, description="No such course.")
    return course


def _link(token: str) -> str:
    return url_for("invites.set_password_page", token=token, _external=True)


# --- users -------------------------------------------------------------------------------------


@bp.get("/users")
def users():
    # ?course=<id> (a course page's "Invite them") ticks that course.
    ticked = {"courses": [request.args.get("course", type=int)]} if "course" in request.args else None
    form = forms.InviteForm(courses.all_courses(), data=ticked)
    return _users_page(form, invited=reveal.take("invite"))


def _users_page(form: forms.InviteForm, status: int = 200, **context):
    return render_template("admin_users.html", users=user_admin.list_users(), form=form, **context), status


@bp.post("/users")
def invite():
    form = forms.InviteForm(courses.all_courses())
    if not form.validate():
        return _users_page(form, 422)
    try:
        user, token = user_admin.invite_user(
            current_user, form.email.data, Role(form.role.data), form.chosen_courses
        )
    except ValueError as exc:
        form.email.errors = [str(exc)]
        return _users_page(form, 422)
    # Shown this once, on the page the browser is sent to (reloading it invites nobody again):
    # the page is not kept by any cache, and the link is kept only until that page takes it.
    shown = {"email": user.email, "link": _link(token)}
    blank = forms.InviteForm(courses.all_courses(), formdata=None)
    return reveal.redirect_showing("invite", shown, url_for("admin.users")) or _users_page(
        blank, 201, invited=[shown]
    )


@bp.get("/users/<id:user_id>")
def user(user_id: int):
    user = _user_or_404(user_id)
    links = reveal.take("reset", subject=user.id)
    return _user_page(user, link=links[-1]["link"] if links else None)  # the newest is the one that works


def _user_page(user, status: int = 200, **context):
    joinable = [course for course in courses.all_courses() if course not in user.courses]
    page = render_template(
        "admin_user.html",
        user=user,
        api_tokens=[t for t in tokens.list_api_tokens(user) if not t.revoked],
        role_form=forms.RoleForm(formdata=None, role=user.role.value),
        course_form=forms.AddCourseForm(joinable, formdata=None),
        **context,
    )
    return page, status


def _back_to_user(user, message: str, category: str = "info"):
    flash(message, category)
    return redirect(url_for("admin.user", user_id=user.id))


@bp.post("/users/<id:user_id>/role")
def set_role(user_id: int):
    user = _user_or_404(user_id)
    form = forms.RoleForm()
    if not form.validate():
        return _back_to_user(user, form.role.errors[0], "error")
    role_name = "an administrator" if user.is_admin else "staff"
    if user.role == Role(form.role.data):
        return _back_to_user(user, f"{user.email} is {role_name} already.")
    try:
        user_admin.set_role(current_user, user, Role(form.role.data))
    except ValueError as exc:
        return _back_to_user(user, str(exc), "error")
    return _back_to_user(user, f"{user.email} is now {'an administrator' if user.is_admin else 'staff'}.")


@bp.post("/users/<id:user_id>/deactivate")
def deactivate(user_id: int):
    user = _user_or_404(user_id)
    try:
        user_admin.set_user_active(current_user, user, False)
    except ValueError as exc:
        return _back_to_user(user, str(exc), "error")
    ended = "their sessions have ended, their API tokens revoked"
    return _back_to_user(user, f"{user.email} is deactivated: {ended}.")


@bp.post("/users/<id:user_id>/activate")
def activate(user_id: int):
    user = _user_or_404(user_id)
    user_admin.set_user_active(current_user, user, True)
    return _back_to_user(user, f"{user.email} may log in again.")


@bp.post("/users/<id:user_id>/revoke-tokens")
def revoke_tokens(user_id: int):
    user = _user_or_404(user_id)
    revoked = user_admin.revoke_api_tokens(current_user, user)
    return _back_to_user(user, f"{messages.plural(revoked, 'API token')} of {user.email} revoked.")


@bp.post("/users/<id:user_id>/courses")
def add_course(user_id: int):
    user = _user_or_404(user_id)
    form = forms.AddCourseForm(courses.all_courses())
    if not form.validate():
        return _back_to_user(user, form.course.errors[0], "error")
    courses.add_member(current_user, form.chosen_course, user)
    return _back_to_user(user, f"{user.email} is a member of {form.chosen_course.name}.")


@bp.post("/users/<id:user_id>/courses/<id:course_id>/remove")
def remove_course(user_id: int, course_id: int):
    user, course = _user_or_404(user_id), _course_or_404(course_id)
    courses.remove_member(current_user, course, user)
    return _back_to_user(user, f"{user.email} is no longer a member of {course.name}.")


@bp.post("/users/<id:user_id>/link")
def new_link(user_id: int):
    user = _user_or_404(user_id)
    try:
        token = user_admin.new_set_password_link(current_user, user)
    except ValueError as exc:
        return _back_to_user(user, str(exc), "error")
    shown = {"link": _link(token)}
    location = url_for("admin.user", user_id=user.id)
    return reveal.redirect_showing("reset", shown, location, subject=user.id) or _user_page(
        user, link=shown["link"]
    )


# --- courses -----------------------------------------------------------------------------------


@bp.get("/courses", endpoint="courses")
def courses_list():
    return _courses_page(forms.CourseNameForm())


def _courses_page(form: forms.CourseNameForm, status: int = 200):
    return render_template("admin_courses.html", rows=courses.list_courses(), form=form), status


@bp.post("/courses")
def create_course():
    form = forms.CourseNameForm()
    if not form.validate():
        return _courses_page(form, 422)
    try:
        course = courses.create_course(current_user, form.name.data)
    except ValueError as exc:
        form.name.errors = [str(exc)]
        return _courses_page(form, 422)
    flash(f"Course {course.name} created. Add its members below.", "info")
    return redirect(url_for("admin.course", course_id=course.id))


@bp.get("/courses/<id:course_id>")
def course(course_id: int):
    course = _course_or_404(course_id)
    return _course_page(course, forms.CourseNameForm(formdata=None, name=course.name))


def _course_page(course, rename_form: forms.CourseNameForm, status: int = 200):
    outsiders = [user for user in user_admin.list_users() if course not in user.courses]
    page = render_template(
        "admin_course.html",
        course=course,
        members=sorted(course.members, key=lambda user: user.email),
        rename_form=rename_form,
        member_form=forms.AddMemberForm(outsiders, formdata=None),
    )
    return page, status


@bp.post("/courses/<id:course_id>/rename")
def rename_course(course_id: int):
    course = _course_or_404(course_id)
    form = forms.CourseNameForm()
    if not form.validate():
        return _course_page(course, form, 422)
    try:
        courses.rename_course(current_user, course, form.name.data)
    except ValueError as exc:
        form.name.errors = [str(exc)]
        return _course_page(course, form, 422)
    flash(f"Course renamed to {course.name}.", "info")
    return redirect(url_for("admin.course", course_id=course.id))


@bp.post("/courses/<id:course_id>/members")
def add_member(course_id: int):
    course = _course_or_404(course_id)
    form = forms.AddMemberForm(user_admin.list_users())
    if form.validate():
        courses.add_member(current_user, course, form.chosen_user)
        flash(f"{form.chosen_user.email} is a member of {course.name}.", "info")
    else:
        flash(form.user.errors[0], "error")
    return redirect(url_for("admin.course", course_id=course.id))


@bp.post("/courses/<id:course_id>/members/<id:user_id>/remove")
def remove_member(course_id: int, user_id: int):
    course, user = _course_or_404(course_id), _user_or_404(user_id)
    courses.remove_member(current_user, course, user)
    flash(f"{user.email} is no longer a member of {course.name}.", "info")
    return redirect(url_for("admin.course", course_id=course.id))


# --- the set-password page (no login needed: the link is the credential) ---------------------
# The token travels in the query string and then the form body, never in the path, so request
# log lines (which record paths only) never hold a working link.


@invites.get("/set-password")
def set_password_page():
    token = request.args.get("token", "")
    user = accounts.user_for_set_password_token(token)
    if user is None:
        abort(404, description=accounts.SET_PASSWORD_LINK_INVALID)
    return render_template("admin_set_password.html", form=forms.SetPasswordForm(token=token), user=user)


@invites.post("/set-password")
def set_password():
    form = forms.SetPasswordForm()
    user = accounts.user_for_set_password_token(form.token.data)
    if user is None:
        abort(404, description=accounts.SET_PASSWORD_LINK_INVALID)

    def page(error: str | None = None):
        return render_template("admin_set_password.html", form=form, user=user, error=error), 422

    if not form.validate():
        return page()
    try:
        user = accounts.set_password_with_link(
            form.token.data, form.new_password.data, form.confirm_password.data
        )
    except accounts.LinkInvalid as exc:
        abort(404, description=str(exc))
    except ValueError as exc:
        return page(str(exc))
    _start_session(user, remember=False)
    flash("Your password is set and you are logged in.", "info")
    return redirect(url_for("pages.jobs"))
