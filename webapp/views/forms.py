"""The browser's forms: their fields, and field errors for what is missing or too long.

The rules themselves live in the services; a form checks only presence and length, with the
services' limits, so that the page can say which field is wrong. CSRF is not checked here:
auth.check_csrf checks it once, before any view, for every browser post.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.datastructures import CombinedMultiDict
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..models import WEBHOOK_EVENTS, Role
from ..services import accounts, jobs, lesson_paths
from ..services.tokens import TOKEN_NAME_MAX

if TYPE_CHECKING:
    from ..models import Course, User

EMAIL_MAX = 254  # as accounts.save_user

_FROM_BODY = object()

_PASSWORD_MAX = Length(
    max=accounts.PASSWORD_MAX, message=f"Passwords have at most {accounts.PASSWORD_MAX} characters."
)
_PASSWORD_MIN = Length(
    min=accounts.PASSWORD_MIN, message=f"Passwords must have at least {accounts.PASSWORD_MIN} characters."
)


class Form(FlaskForm):
    """Fields from the posted form body only (never a JSON body); none on GET."""

    class Meta:
        csrf = False  # checked once for every browser post, in auth.check_csrf

    def __init__(self, formdata=_FROM_BODY, **kwargs):
        if formdata is _FROM_BODY:
            formdata = request.form if request.method == "POST" else None
        super().__init__(formdata, **kwargs)


def one_line(value: str | None) -> str | None:
    """Runs of whitespace as one space, as the services save names and titles: the length is
    checked on what will be saved."""
    return " ".join(value.split()) if value else value


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes for a few choices; none ticked means "all"."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):
        if self.data and not set(self.data) <= {choice.value for choice in self.choices}:
            raise ValidationError("Choose among the listed events.")


class _CourseForm(Form):
    """A form with a `course` select over the courses given; `chosen_course` is the one chosen."""

    course: SelectField

    def __init__(self, courses: list[Course], **kwargs):
        super().__init__(**kwargs)
        self._courses = {course.id: course for course in courses}
        self.course.choices = [SelectChoice(course.id, course.name) for course in courses]

    @property
    def chosen_course(self) -> Course | None:
        return self._courses.get(self.course.data)


def _course_field(message: str) -> SelectField:
    return SelectField(
        "Course",
        coerce=int,
        invalid_value_message=message,
        invalid_choice_message=message,
        render_kw={"required": True},
    )


class LoginForm(Form):
    email = EmailField(
        "Email",
        [
            InputRequired("Enter your email address."),
            Length(max=EMAIL_MAX, message=f"Email addresses have at most {EMAIL_MAX} characters."),
        ],
    )
    password = PasswordField("Password", [InputRequired("Enter your password."), _PASSWORD_MAX])
    remember = BooleanField("Keep me logged in")
    next_url = HiddenField(name="next", default="")


class ChangePasswordForm(Form):
    # Whether the two new ones agree, and the current one is right, is for the service to say.
    current_password = PasswordField(
        "Current password", [InputRequired("Enter your current password."), _PASSWORD_MAX]
    )
    new_password = PasswordField(
        "New password", [InputRequired("Enter a new password."), _PASSWORD_MIN, _PASSWORD_MAX]
    )
    confirm_password = PasswordField(
        "New password again", [InputRequired("Enter the new password again."), _PASSWORD_MIN, _PASSWORD_MAX]
    )


class JobForm(_CourseForm):
    course = _course_field("Choose one of your courses.")
    video = StringField("YouTube URL or video id", [InputRequired("Enter a YouTube URL or video id.")])
    title = StringField(
        "Title",
        [Length(max=jobs.TITLE_MAX, message=f"Titles have at most {jobs.TITLE_MAX} characters.")],
        filters=[one_line],
    )


class MoveJobForm(_CourseForm):
    course = _course_field("Choose a course to move the job to.")


class WebhookForm(_CourseForm):
    course = _course_field("Choose one of your courses.")
    url = URLField(
        "Endpoint URL",
        [
            InputRequired(message="Enter the URL to send events to."),
            Length(max=2000, message="Webhook URLs have at most 2000 characters."),
        ],
        filters=[lambda value: value.strip() if value else value],
        render_kw={"placeholder": "https://lms.example.com/hooks"},
    )
    events = MultiCheckboxField("Events", choices=[SelectChoice(event, event) for event in WEBHOOK_EVENTS])


class TokenForm(Form):
    # Not required: the service names a token without a name "API token".
    name = StringField(
        "Token name",
        [Length(max=TOKEN_NAME_MAX, message=f"Token names have at most {TOKEN_NAME_MAX} characters.")],
        filters=[one_line],
    )


class _WholeNumberField(IntegerField):
    """An IntegerField whose refusal of what is not a number is a sentence for people."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError("Enter the lesson number as a whole number, such as 3.") from exc


class UploadForm(Form):
    package = FileField("Lesson package (.zip)", [FileRequired("Choose a zip file to upload.")])
    lesson = _WholeNumberField(
        "Only this lesson number",
        [Optional(), NumberRange(0, 999_999, "Lesson numbers go from 0 to 999999.")],
        description="Leave empty when the zip holds lesson_<n>/ folders; "
        "give a number when it holds one lesson's files.",
    )

    def __init__(self, **kwargs):
        super().__init__(CombinedMultiDict((request.files, request.form)), **kwargs)


class LessonFileForm(Form):
    """One file of a lesson (services/lesson_files.py judges the path)."""

    path = StringField("Path in the lesson", [Optional(), Length(max=lesson_paths.PATH_MAX)])
    file = FileField("File", [FileRequired("Choose the file to upload.")])

    def __init__(self, **kwargs):
        super().__init__(CombinedMultiDict((request.files, request.form)), **kwargs)


class RemoveLessonFileForm(Form):
    path = HiddenField(validators=[InputRequired("Say which file to remove.")])


class GenerateForm(Form):
    # Which lesson is for the service to judge (it answers an unknown or empty path).
    lesson_path = HiddenField(name="lessonPath", default="")


class RenameJobForm(Form):
    # Not required: the service names a job without a title "Video <id>".
    title = StringField(
        "Title",
        [Length(max=jobs.TITLE_MAX, message=f"Titles have at most {jobs.TITLE_MAX} characters.")],
        filters=[one_line],
    )


class DeleteJobForm(Form):
    delete_videos = BooleanField("Also delete the finished video files")


# --- administrators' pages and the set-password page -----------------------------------------


class SetPasswordForm(Form):
    # Whether the two agree is for the service to say, as on the account page.
    token = HiddenField(default="")
    new_password = PasswordField(
        "New password", [InputRequired("Enter a new password."), _PASSWORD_MIN, _PASSWORD_MAX]
    )
    confirm_password = PasswordField(
        "New password again", [InputRequired("Enter the new password again."), _PASSWORD_MIN, _PASSWORD_MAX]
    )


_ROLE_CHOICES = [SelectChoice(Role.STAFF.value, "staff"), SelectChoice(Role.ADMIN.value, "administrator")]


def _role_field() -> SelectField:
    return SelectField("Role", choices=_ROLE_CHOICES, default=Role.STAFF.value, validate_choice=True)


class CourseChecklist(MultiCheckboxField):
    def pre_validate(self, form):
        if self.data and not set(self.data) <= {choice.value for choice in self.choices}:
            raise ValidationError("Choose among the listed courses.")


class InviteForm(Form):
    email = EmailField(
        "Email",
        [
            InputRequired("Enter the email address of the person to invite."),
            Length(max=EMAIL_MAX, message=f"Email addresses have at most {EMAIL_MAX} characters."),
        ],
    )
    role = _role_field()
    courses = CourseChecklist("Courses", coerce=int)

    def __init__(self, courses: list[Course], **kwargs):
        super().__init__(**kwargs)
        self._courses = {course.id: course for course in courses}
        self.courses.choices = [SelectChoice(course.id, course.name) for course in courses]

    @property
    def chosen_courses(self) -> list[Course]:
        return [self._courses[course_id] for course_id in self.courses.data or ()]

    def validate_courses(self, field) -> None:
        # Staff see only their courses' jobs: invited into none, they would see nothing at all.
        if self.role.data == Role.STAFF.value and self._courses and not field.data:
            raise ValidationError("Choose at least one course: staff see only the jobs of their courses.")


class RoleForm(Form):
    role = _role_field()


def _id_or_none(value) -> int | None:
    return None if value in ("", None) else int(value)


def _asked_field(label: str, message: str) -> SelectField:
    """A select that starts on an empty choice (_ask_first), so a click on its button adds nobody
    by accident: required, so the browser asks for a choice; sent empty, the field says `message`."""
    return SelectField(
        label,
        [InputRequired(message)],
        coerce=_id_or_none,
        invalid_value_message=message,
        invalid_choice_message=message,
    )


def _ask_first(field: SelectField, prompt: str) -> None:
    field.choices = [SelectChoice("", prompt), *field.choices]


class AddCourseForm(_CourseForm):
    course = _asked_field("Course", "Choose a course to add the user to.")

    def __init__(self, courses: list[Course], **kwargs):
        super().__init__(courses, **kwargs)
        self.offers = bool(courses)
        _ask_first(self.course, "Choose a course…")


class AddMemberForm(Form):
    user = _asked_field("User", "Choose a user to add.")

    def __init__(self, users: list[User], **kwargs):
        super().__init__(**kwargs)
        self._users = {user.id: user for user in users}
        self.user.choices = [SelectChoice(user.id, user.email) for user in users]
        self.offers = bool(users)
        _ask_first(self.user, "Choose a user…")

    @property
    def chosen_user(self) -> User | None:
        return self._users.get(self.user.data)


class CourseNameForm(Form):
    name = StringField(
        "Course name",
        [
            InputRequired("Enter a course name."),
            Length(
                max=accounts.COURSE_NAME_MAX,
                message=f"Course names have at most {accounts.COURSE_NAME_MAX} characters.",
            ),
        ],
        filters=[lambda value: value.strip() if value else value],
    )
