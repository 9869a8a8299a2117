"""A lesson's files page: its files listed, one replaced or added from the browser, checked before
anything changes; course scope, CSRF, paths kept inside the lesson, renders under way."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import unicodedata
import uuid
import zipfile
from html import unescape
from pathlib import Path

import pytest

from webapp.render.sample import write_tone

from .helpers import bearer, csrf_token


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


def _rows(html: str) -> list[str]:
    """The files table's rows, as text."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def test_the_page_lists_the_lessons_files_and_the_job_page_links_it(app, client, factory, member):
    """Each file with what lesson.json uses it for, in counting order (2 before 10), and the files
    lesson.json names that are not there, to add in place."""
    job = factory.job("Course A", lessons=2)
    html = client.get(_page(job)).text
    assert _rows(html) == [
        "audio/1.wav segment 1's narration 46.9 KB Replace",
        "images/1.png segment 1's picture 791 B Replace",
        "lesson.json the lesson itself 314 B Replace",
    ]
    assert html.count('type="file"') == 4 and 'name="csrf_token"' in html  # three rows, and Add
    assert f'href="{_page(job, 2)}"' in client.get(f"/jobs/{job.id}").text
    folder = _lesson(app, job)
    manifest = json.loads((folder / "lesson.json").read_text())
    manifest["segments"] += [{"image": f"images/{n}.png", "duration": 1} for n in (2, 10)]
    manifest["music"] = {"src": "../bed.mp3"}  # in the video folder: not the lesson's to list
    (folder / "lesson.json").write_text(json.dumps(manifest))
    (folder / "notes.txt").write_text("x")
    rows = _rows(client.get(_page(job)).text)
    assert [row.split()[0] for row in rows] == [
        "audio/1.wav",
        "images/1.png",
        "images/2.png",
        "images/10.png",
        "lesson.json",
        "notes.txt",
    ]
    assert rows[2] == "images/2.png segment 2's picture missing Add"
    assert rows[5].startswith("notes.txt not named by lesson.json")


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
    assert "0:02" in job_page and 'id="lesson-1"' in job_page
    token = csrf_token(client, _page(job))
    assert "Generate its video" in page  # the change shown without a trip to the job page's row
    generated = client.post(
        f"/jobs/{job.id}/generate", data={"lessonPath": job.lessons[0], "csrf_token": token}
    )
    assert "render queued" in _after(client, generated)
    assert "Generate its video" not in client.get(_page(job)).text  # not while it renders


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
    # An old browser sends the whole path on the user's computer: the name alone is kept.
    page = _after(client, put(client, job, _tone(tmp_path, 0.5), "C:/Users/me/intro.wav"))
    assert "Added intro.wav." in page and (_lesson(app, job) / "intro.wav").is_file()


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
        ("C:\\Users\\me\\pic.png", "give a path inside the lesson"),
        ("c:pic.png", "give a path inside the lesson"),
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
    html = client.get(_page(job)).text
    assert "A render of this lesson is queued or running" in html and html.count(" disabled>") == 4
    page = _after(client, put(client, job, _tone(tmp_path, 1.0), "1.wav", "audio/1.wav"))
    assert "Nothing changed: lesson_1: a render of this lesson is queued or running" in page


def test_a_file_over_the_upload_cap_is_413_before_it_is_read(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    app.config["UPLOAD_MAX_BYTES"] = 1000
    response = put(client, job, bytes(70 * 1024), "big.wav", "audio/1.wav")
    assert response.status_code == 413 and "A file may be at most" in response.text


# From an attacker's review: links, races, odd names.


def _package_names(client, job, headers, number: int = 1) -> dict[str, bytes]:
    response = client.get(f"/api/jobs/{job.id}/lessons/{number}/package", headers=headers)
    assert response.status_code == 200, response.status_code
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    return {name: archive.read(name) for name in archive.namelist()}


def test_a_link_to_another_courses_file_stays_a_link(app, client, factory, member, tmp_path):
    """A link in course A's lesson (a pipeline left it) leads to course B's file: the page does not
    tell its size, and replacing another file kept it as a link; it was copied in as a real
    file, which the lesson package then handed out."""
    mine = factory.job("Course A", lessons=1)
    theirs = factory.job("Course B", lessons=1)
    secret = _lesson(app, theirs) / "secret.txt"
    secret.write_text("course B answer key")
    link = _lesson(app, mine) / "notes.txt"
    os.symlink(secret, link)
    page = client.get(_page(mine)).text
    assert "<code>notes.txt</code>" in page and "a link" in page and "19 B" not in page
    _after(client, put(client, mine, _tone(tmp_path, 1.0), "1.wav", "audio/1.wav"))
    assert link.is_symlink() and os.readlink(link) == str(secret)
    files = _package_names(client, mine, bearer(factory.token(member.email)))
    assert b"course B answer key" not in files.values() and "lesson_1/audio/1.wav" in files


def test_a_link_leading_out_of_the_lessons_folder_does_not_stop_a_change(
    app, client, factory, member, tmp_path
):
    mine = factory.job("Course A", lessons=1)
    os.symlink("/etc/passwd", _lesson(app, mine) / "passwd")
    page = _after(client, put(client, mine, _tone(tmp_path, 1.0), "1.wav", "audio/1.wav"))
    assert "Replaced audio/1.wav. The lesson checks out" in page


def test_a_lesson_folder_that_is_a_link_lists_its_files(app, client, factory, member):
    job = factory.job("Course A", lessons=2)
    two = _lesson(app, job, 2)
    shutil.rmtree(two)
    os.symlink("lesson_1", two)
    assert "<code>images/1.png</code>" in client.get(_page(job, 2)).text


def test_two_changes_at_once_the_second_to_land_is_refused(
    app, client, factory, member, tmp_path, monkeypatch
):
    """Change A was compared with the lesson before its check (seconds, for a long narration) and
    not again: change B, landing meanwhile, was undone by A's swap, and both were told they went in."""
    from webapp.services import uploads

    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    real = uploads._validate
    calls = []

    def slow_validate(number, where):
        calls.append(number)
        if len(calls) == 1:  # while A is checked, B lands (another upload's swap, here by hand)
            (folder / "notes.txt").write_bytes(b"B's notes")
        return real(number, where)

    monkeypatch.setattr(uploads, "_validate", slow_validate)
    page = _after(client, put(client, job, _tone(tmp_path, 1.5), "1.wav", "audio/1.wav"))
    assert "Nothing changed: The lesson&#39;s files changed meanwhile" in page
    assert (folder / "notes.txt").read_bytes() == b"B's notes"


def test_a_name_too_long_in_bytes_is_refused(client, factory, member):
    job = factory.job("Course A", lessons=1)
    page = _after(client, put(client, job, b"x", "x.txt", "\U0001d4b3" * 100 + ".txt"))
    assert "Nothing changed:" in page and "too long a name" in page


def test_the_job_deleted_meanwhile_is_said(app, client, factory, member, tmp_path, monkeypatch):
    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import jobs, uploads

    job = factory.job("Course A", lessons=1)
    real = uploads._validate

    def validate_then_delete(number, where):
        real(number, where)
        with app.app_context():  # another request deletes the job
            jobs.delete_job(db.session.get(VideoJob, uuid.UUID(job.id)))

    monkeypatch.setattr(uploads, "_validate", validate_then_delete)
    response = put(client, job, _tone(tmp_path, 1.0), "1.wav", "audio/1.wav")
    assert response.status_code == 302  # to the page, which is gone with the job: 404
    assert client.get(response.headers["Location"]).status_code == 404


def test_a_name_a_mac_wrote_decomposed_is_replaced_not_doubled(app, client, factory, member, tmp_path):
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    nfd = unicodedata.normalize("NFD", "café.wav")
    (folder / "audio" / "1.wav").rename(folder / "audio" / nfd)
    manifest = json.loads((folder / "lesson.json").read_text())
    manifest["segments"][0]["audio"] = f"audio/{nfd}"
    (folder / "lesson.json").write_text(json.dumps(manifest))
    page = _after(client, put(client, job, _tone(tmp_path, 2.0), "new.wav", f"audio/{nfd}"))
    assert "Replaced audio/café.wav." in unicodedata.normalize("NFC", page)
    assert [p.name for p in (folder / "audio").iterdir()] == [nfd]


def test_a_missing_lesson_takes_no_file(app, client, factory, member):
    """A lesson whose folder went is kept (as missing) while renders refer to it: its page offers
    no form, and a post is refused rather than bringing the folder back with one file in it."""
    job = factory.job("Course A", lessons=2)
    body = {"jobId": job.id, "lessonPath": job.lessons[1], "outputFileName": "v.mp4"}
    headers = bearer(factory.token(member.email))
    assert client.post("/video-transform/generate-video", json=body, headers=headers).status_code == 202
    token = csrf_token(client, _page(job, 2))
    shutil.rmtree(_lesson(app, job, 2))
    client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": token})
    page = _after(client, put(client, job, b"x", "x.bin", "x.bin", number=2, token=token))
    assert "Nothing changed: The lesson folder is gone" in page and not _lesson(app, job, 2).exists()
    assert 'type="file"' not in page


def test_the_api_lists_and_puts_a_lesson_file(app, client, factory, tmp_path):
    user = factory.user("api@example.com", courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=1)
    theirs = factory.job("Course B", lessons=1)
    url = f"/api/jobs/{job.id}/lessons/1/files"
    listed = client.get(url, headers=headers)
    assert listed.status_code == 200
    assert [f["path"] for f in listed.json["files"]] == ["audio/1.wav", "images/1.png", "lesson.json"]

    def send(target, data: bytes, name: str, path: str | None = None):
        query = f"?path={path}" if path is not None else ""
        return client.post(
            target + query,
            data={"file": (io.BytesIO(data), name)},
            content_type="multipart/form-data",
            headers=headers,
        )

    replaced = send(url, _tone(tmp_path, 2.0, "m4a"), "take2.m4a", "audio/1.wav")
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["added"] is False and replaced.json["problem"] is None
    assert replaced.json["lesson"]["durationSeconds"] == pytest.approx(2.0, abs=0.1)
    added = send(url, b"notes", "notes.txt")
    assert added.status_code == 201 and added.json["path"] == "notes.txt"
    broken = send(url, b"not a picture", "x.png", "images/1.png")
    assert broken.status_code == 422 and broken.json["lesson"] == "lesson_1"
    assert broken.json["field"] == "segments[0].image"
    assert send(url, b"x", "x.png", "../lesson_2/x.png").status_code == 422
    assert send(f"/api/jobs/{theirs.id}/lessons/1/files", b"x", "x.png").status_code == 404
    assert client.get(f"/api/jobs/{theirs.id}/lessons/1/files", headers=headers).status_code == 404
    assert client.get(f"/api/jobs/{job.id}/lessons/7/files", headers=headers).status_code == 404
    no_file = client.post(url, data={}, content_type="multipart/form-data", headers=headers)
    assert no_file.status_code == 400 and "'file' is required: send it" in no_file.json["message"]


def test_the_api_reads_a_file_and_changes_it_only_if_it_is_still_the_one_read(app, client, factory):
    """An integrator fixing a caption: GET lesson.json (with its ETag), edit, POST it back with
    If-Match; a change landing in between (another tool, the words page) makes it 412, not lost."""
    user = factory.user("api@example.com", courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=1)
    theirs = factory.job("Course B", lessons=1)
    url = f"/api/jobs/{job.id}/lessons/1/files"
    listed = {f["path"]: f for f in client.get(url, headers=headers).json["files"]}
    assert (
        listed["audio/1.wav"]["uses"] == ["segment 1's narration"]
        and listed["audio/1.wav"]["missing"] is False
    )
    got = client.get(f"{url}/lesson.json", headers=headers)
    assert got.status_code == 200 and got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["ETag"] == f'"{listed["lesson.json"]["etag"]}"'
    again = client.get(f"{url}/lesson.json", headers={**headers, "If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304
    manifest = json.loads(got.data)
    manifest["segments"][0]["caption"] = "แก้คำผิดแล้ว"

    def put(data: bytes, if_match: str, path: str = "lesson.json"):
        return client.post(
            f"{url}?path={path}",
            data={"file": (io.BytesIO(data), "lesson.json")},
            content_type="multipart/form-data",
            headers={**headers, "If-Match": if_match},
        )

    first = put(json.dumps(manifest).encode(), got.headers["ETag"])
    assert first.status_code == 200, first.json
    stale = put(b'{"title": "mine", "segments": []}', got.headers["ETag"])
    assert stale.status_code == 412 and "changed since it was read" in stale.json["message"]
    assert (
        json.loads((_lesson(app, job) / "lesson.json").read_text())["segments"][0]["caption"] == "แก้คำผิดแล้ว"
    )
    now = client.get(f"{url}/lesson.json", headers=headers).headers["ETag"]
    assert now != got.headers["ETag"]
    assert put(b"x", "W/" + now).status_code == 412  # a weak tag never matches a change
    assert put(b"x", "*", path="notes.txt").status_code == 412  # '*': only if the file is there
    stray = put(b"notes", now.join("  "), path="notes.txt")  # If-Match naming lesson.json's tag
    assert stray.status_code == 412 and not (_lesson(app, job) / "notes.txt").exists()
    (_lesson(app, job) / "notes.txt").write_text("x")
    notes = client.get(f"{url}/notes.txt", headers=headers).headers["ETag"]
    (_lesson(app, job) / "notes.txt").write_text("changed by hand")
    removed = client.delete(f"{url}?path=notes.txt", headers={**headers, "If-Match": notes})
    assert removed.status_code == 412 and (_lesson(app, job) / "notes.txt").exists()

    assert (
        client.get(f"/api/jobs/{theirs.id}/lessons/1/files/lesson.json", headers=headers).status_code == 404
    )
    for path in ("../lesson_2/lesson.json", "missing.png", ".hidden", "%2e%2e/x"):
        assert client.get(f"{url}/{path}", headers=headers).status_code == 404, path
    assert client.get(f"{url}/lesson.json").status_code == 401


def test_a_file_downloads_as_a_file_within_the_course(app, client, factory, member, tmp_path):
    """Each file's name downloads it (to check which narration is there, or to edit lesson.json),
    always as an attachment: an HTML or SVG file of a lesson must not run as this site."""
    job = factory.job("Course A", lessons=1)
    theirs = factory.job("Course B", lessons=1)
    folder = _lesson(app, job)
    (folder / "page.html").write_text("<script>alert(1)</script>")
    os.symlink(_lesson(app, theirs) / "lesson.json", folder / "theirs.json")
    html = client.get(_page(job)).text
    assert f'href="{_page(job)}/lesson.json"' in html and f'href="{_page(job)}/theirs.json"' not in html
    got = client.get(f"{_page(job)}/lesson.json")
    assert got.status_code == 200 and got.data == (folder / "lesson.json").read_bytes()
    assert got.headers["Content-Disposition"].startswith("attachment")
    page = client.get(f"{_page(job)}/page.html")
    assert page.headers["Content-Type"] == "application/octet-stream"
    assert page.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"{_page(job)}/images/1.png").data[:4] == b"\x89PNG"
    for refused in ("theirs.json", "../lesson_2/lesson.json", "missing.png", ".hidden"):
        assert client.get(f"{_page(job)}/{refused}").status_code == 404, refused
    assert client.get(f"{_page(theirs)}/lesson.json").status_code == 404


def test_a_file_lesson_json_does_not_use_can_be_removed(app, client, factory, member, tmp_path):
    """A stray upload (added under its own name, by mistake) goes again; a file lesson.json uses,
    and lesson.json itself, cannot be removed (replace them, or change lesson.json first)."""
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    _after(client, put(client, job, b"oops", "IMG_2041.png"))
    html = client.get(_page(job)).text
    assert html.count(">Remove</button>") == 1 and 'aria-label="Remove IMG_2041.png"' in html
    token = csrf_token(client, _page(job))

    def remove(path: str) -> str:
        return _after(client, client.post(f"{_page(job)}/remove", data={"path": path, "csrf_token": token}))

    assert "Removed IMG_2041.png." in remove("IMG_2041.png") and not (folder / "IMG_2041.png").exists()
    page = remove("audio/1.wav")
    assert "Nothing changed: “audio/1.wav” is segment 1&#39;s narration: replace it instead" in page
    assert "Nothing changed: “lesson.json” is the lesson itself" in remove("lesson.json")
    assert "is not a file of the lesson" in remove("gone.png")
    assert (folder / "audio" / "1.wav").is_file() and (folder / "lesson.json").is_file()
    refused = client.post(f"{_page(job)}/remove", data={"path": "audio/1.wav"})
    assert refused.status_code == 400  # no CSRF token
    headers = bearer(factory.token(member.email))
    (folder / "notes.txt").write_text("x")
    api = client.delete(f"/api/jobs/{job.id}/lessons/1/files?path=notes.txt", headers=headers)
    assert api.status_code == 200 and api.json["path"] == "notes.txt" and not (folder / "notes.txt").exists()
    used = client.delete(f"/api/jobs/{job.id}/lessons/1/files?path=images/1.png", headers=headers)
    assert used.status_code == 409 and "segment 1's picture" in used.json["message"]
    theirs = factory.job("Course B", lessons=1)
    (_lesson(app, theirs) / "notes.txt").write_text("theirs")
    other = client.delete(f"/api/jobs/{theirs.id}/lessons/1/files?path=notes.txt", headers=headers)
    assert other.status_code == 404 and (_lesson(app, theirs) / "notes.txt").exists()
    page = client.post(
        f"/jobs/{theirs.id}/lessons/1/files/remove", data={"path": "notes.txt", "csrf_token": token}
    )
    assert page.status_code == 404 and (_lesson(app, theirs) / "notes.txt").exists()


def test_while_lesson_json_cannot_be_read_no_file_can_be_removed(app, client, factory, member):
    """Which files a lesson uses cannot be told from a lesson.json that does not parse: its files
    were all listed as unused, with Remove, and a narration it needed could be deleted."""
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    (folder / "lesson.json").write_text('{"title": "x", "segments": [{"audio": "audio/1.wav",}]}')
    html = unescape(client.get(_page(job)).text)
    assert ">Remove</button>" not in html and "not named by lesson.json" not in html
    assert "cannot tell while lesson.json cannot be read" in html
    token = csrf_token(client, _page(job))
    page = _after(
        client, client.post(f"{_page(job)}/remove", data={"path": "audio/1.wav", "csrf_token": token})
    )
    assert "Nothing changed: lesson.json cannot be read, so whether the lesson uses" in unescape(page)
    assert (folder / "audio" / "1.wav").is_file()
    headers = bearer(factory.token(member.email))
    api = client.delete(f"/api/jobs/{job.id}/lessons/1/files?path=audio/1.wav", headers=headers)
    assert api.status_code == 409 and (folder / "audio" / "1.wav").is_file()


def test_a_lesson_folder_leading_out_of_the_lessons_folder_is_said_not_listed(
    app, client, factory, member, tmp_path
):
    job = factory.job("Course A", lessons=2)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("x")
    two = _lesson(app, job, 2)
    shutil.rmtree(two)
    os.symlink(outside, two)
    page = client.get(_page(job, 2))
    assert (
        page.status_code == 200
        and "not inside the lessons folder" in page.text
        and "secret.txt" not in page.text
    )
    assert client.get(f"{_page(job, 2)}/secret.txt").status_code == 404


def test_a_lesson_json_nested_too_deeply_lists_its_files_without_a_500(app, client, factory, member):
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    manifest = json.loads((folder / "lesson.json").read_text())
    text = json.dumps(manifest)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (folder / "lesson.json").write_text(text)
    assert "cannot tell while lesson.json cannot be read" in unescape(client.get(_page(job)).text)
    headers = bearer(factory.token(member.email))
    assert client.get(f"/api/jobs/{job.id}/lessons/1/files", headers=headers).status_code == 200
    (folder / "notes.txt").write_text("x")
    removed = client.delete(f"/api/jobs/{job.id}/lessons/1/files?path=notes.txt", headers=headers)
    assert removed.status_code == 409 and (folder / "notes.txt").exists()


@pytest.mark.parametrize(
    "spelt", ["audio\\1.wav", "../lesson_1/audio/1.wav", "x/../audio/1.wav", "./audio//1.wav"]
)
def test_a_file_named_as_the_renderer_reads_it_is_known_as_used(app, client, factory, member, spelt):
    """lesson.json may name a file with a backslash, `..` or `.`: the renderer reads audio/1.wav,
    the page called it unused (and offered to remove it from a lesson broken for another reason)."""
    job = factory.job("Course A", lessons=1)
    folder = _lesson(app, job)
    manifest = json.loads((folder / "lesson.json").read_text())
    manifest["segments"][0]["audio"] = spelt
    manifest["segments"][0]["image"] = "images/gone.png"  # broken for another reason
    (folder / "lesson.json").write_text(json.dumps(manifest))
    rows = _rows(client.get(_page(job)).text)
    assert "audio/1.wav segment 1's narration 46.9 KB Replace" in rows
    assert not any("\\" in row for row in rows)  # no phantom missing file
    token = csrf_token(client, _page(job))
    page = _after(
        client, client.post(f"{_page(job)}/remove", data={"path": "audio/1.wav", "csrf_token": token})
    )
    assert "is segment 1&#39;s narration" in page and (folder / "audio" / "1.wav").is_file()


def test_if_none_match_star_adds_a_file_only_when_there_is_none(app, client, factory):
    user = factory.user("api@example.com", courses=["Course A"])
    headers = {**bearer(factory.token(user.email)), "If-None-Match": "*"}
    job = factory.job("Course A", lessons=1)
    url = f"/api/jobs/{job.id}/lessons/1/files"

    def put(path: str, data: bytes):
        files = {"file": (io.BytesIO(data), "x")}
        return client.post(
            f"{url}?path={path}", data=files, content_type="multipart/form-data", headers=headers
        )

    assert put("notes.txt", b"mine").status_code == 201
    again = put("notes.txt", b"theirs")
    assert again.status_code == 412 and (_lesson(app, job) / "notes.txt").read_bytes() == b"mine"
