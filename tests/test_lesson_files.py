"""A lesson's files page: its files listed, one replaced or added from the browser, checked before
anything changes; course scope, CSRF, paths kept inside the lesson, renders under way."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from webapp.render.sample import write_tone

from .helpers import bearer, csrf_token


@pytest.fixture
def member(factory, auth):
    user = factory.user("mali@example.com", courses=["Course A"])
    auth.login(user.email)
    return user


def _page(job, number: int = 1) -> str:
    return f"/jobs/{job.id}/lessons/{number}/files"


def put(client, job, data: bytes, name: str, path: str | None = None, number: int = 1, token=None):
    fields = {"file": (io.BytesIO(data), name), "csrf_token": token or csrf_token(client, _page(job, number))}
    if path is not None:
        fields["path"] = path
    return client.post(_page(job, number), data=fields, content_type="multipart/form-data")


def _after(client, response) -> str:
    """The page the post leads back to, with its message."""
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"]).text


def _tone(tmp_path: Path, seconds: float, fmt: str = "wav") -> bytes:
    return write_tone(tmp_path / f"tone-{seconds}.{fmt}", seconds, 330.0, fmt=fmt).read_bytes()


def _lesson(app, job, number: int = 1) -> Path:
    return Path(app.config["LESSONS_ROOT"]) / job.video_id / f"lesson_{number}"


def test_the_page_lists_the_lessons_files_and_the_job_page_links_it(client, factory, member):
    job = factory.job("Course A", lessons=2)
    html = client.get(_page(job)).text
    for path in ("lesson.json", "images/1.png", "audio/1.wav"):
        assert f"<code>{path}</code>" in html
    assert html.count('type="file"') == 4 and 'name="csrf_token"' in html  # three rows, and Add
    assert f'href="{_page(job, 2)}"' in client.get(f"/jobs/{job.id}").text


def test_a_narration_recorded_again_replaces_the_old_one_and_the_lesson_follows(
    app, client, factory, member, tmp_path
):
    """A phone's recording (AAC in M4A) takes the place lesson.json names (audio/1.wav): the lesson
    now lasts as long as it, the other files stay as they were."""
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    picture = (folder / "images" / "1.png").read_bytes()
    page = _after(client, put(client, job, _tone(tmp_path, 2.0, "m4a"), "New Recording 3.m4a", "audio/1.wav"))
    assert "Replaced audio/1.wav. The lesson checks out" in page and "0:02" in page
    assert (folder / "audio" / "1.wav").read_bytes()[4:8] == b"ftyp"  # the M4A, under the old name
    assert (folder / "images" / "1.png").read_bytes() == picture
    job_page = client.get(f"/jobs/{job.id}").text
    assert "0:02" in job_page


def test_a_file_that_would_break_a_working_lesson_is_refused_and_nothing_changes(
    app, client, factory, member
):
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    page = _after(client, put(client, job, b"not a picture", "slide.png", "images/1.png"))
    assert "Nothing changed: lesson_1: segment 1, image: not a PNG, JPEG" in page
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    broken = json.dumps({"title": "x", "segments": []}).encode()
    page = _after(client, put(client, job, broken, "lesson.json", "lesson.json"))
    assert "Nothing changed: lesson_1: segments:" in page


def test_a_broken_lesson_is_mended_file_by_file(app, client, factory, member, tmp_path):
    """A lesson missing two files takes the first (and says what is still wrong), then the second."""
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    manifest = json.loads((folder / "lesson.json").read_text())
    manifest["segments"].append({"image": "images/2.png", "audio": "audio/2.wav"})
    (folder / "lesson.json").write_text(json.dumps(manifest))
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, f"/jobs/{job.id}")})
    assert "images/2.png" in client.get(_page(job)).text  # the problem, said on the page
    page = _after(client, put(client, job, _tone(tmp_path, 1.0), "2.wav", "audio/2.wav"))
    assert "Added audio/2.wav. The lesson still has a problem: lesson_1: segment 2, image" in page
    assert (folder / "audio" / "2.wav").is_file()
    png = (folder / "images" / "1.png").read_bytes()
    page = _after(client, put(client, job, png, "2.png", "images/2.png"))
    assert "Added images/2.png. The lesson checks out" in page and "What is wrong" not in page


def test_added_without_a_path_a_file_keeps_its_own_name(app, client, factory, member, tmp_path):
    job = factory.job("Course A", lessons=1)
    page = _after(client, put(client, job, _tone(tmp_path, 0.5), "outro.wav"))
    assert "Added outro.wav." in page and (_lesson(app, job) / "outro.wav").is_file()


@pytest.mark.parametrize(
    "path, said",
    [
        ("../lesson_2/lesson.json", "give a path inside the lesson"),
        ("/etc/passwd", "give a path inside the lesson"),
        ("images/../../x.png", "give a path inside the lesson"),
        ("images\\..\\..\\x.png", "give a path inside the lesson"),
        (".version.json", "names that start with a dot"),
        ("images/1.png/x.png", "“images/1.png” is a file of the lesson"),
        ("images", "“images” is a folder of the lesson"),
        ("a/" * 9 + "x.png", "too many folders"),
        ("x\u0007.png", "control characters"),
    ],
)
def test_paths_stay_inside_the_lesson(app, client, factory, member, path, said):
    job = factory.job("Course A", lessons=2)
    root = Path(app.config["LESSONS_ROOT"])
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    page = _after(client, put(client, job, b"x", "x.png", path))
    assert "Nothing changed:" in page and said in page
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_course_scope_csrf_and_strangers(app, client, factory, member, tmp_path):
    job = factory.job("Course A", lessons=1)
    theirs = factory.job("Course B", lessons=1)
    assert client.get(_page(theirs)).status_code == 404
    token = csrf_token(client, _page(job))
    assert put(client, theirs, b"x", "x.png", "x.png", token=token).status_code == 404
    assert not (_lesson(app, theirs) / "x.png").exists()
    assert client.get(_page(job, 9)).status_code == 404  # no such lesson
    assert client.get(f"/jobs/{job.id}/lessons/99999999999999999999/files").status_code == 404
    refused = client.post(
        _page(job),
        data={"file": (io.BytesIO(b"x"), "x.png"), "path": "x.png"},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400 and not (_lesson(app, job) / "x.png").exists()  # no CSRF token
    client.post("/logout", data={"csrf_token": token})
    assert client.get(_page(job)).status_code in (302, 401)
    stranger = put(client, job, b"x", "x.png", "x.png", token=token)
    assert stranger.status_code in (302, 400, 401) and not (_lesson(app, job) / "x.png").exists()


def test_a_lesson_being_rendered_keeps_its_files(app, client, factory, member, tmp_path):
    job = factory.job("Course A", lessons=1)
    headers = bearer(factory.token(member.email))
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": "v.mp4"}
    assert client.post("/video-transform/generate-video", json=body, headers=headers).status_code == 202
    page = _after(client, put(client, job, _tone(tmp_path, 1.0), "1.wav", "audio/1.wav"))
    assert "Nothing changed: lesson_1: a render of this lesson is queued or running" in page


def test_a_file_over_the_upload_cap_is_413_before_it_is_read(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    app.config["UPLOAD_MAX_BYTES"] = 1000
    response = put(client, job, bytes(70 * 1024), "big.wav", "audio/1.wav")
    assert response.status_code == 413 and "A file may be at most" in response.text
