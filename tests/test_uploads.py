"""Lesson packages over the API: upload, validation before anything changes, hostile archives,
active renders, course scope, and the download that gives a package back."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest

from webapp.render.sample import write_clip, write_sample_lesson

from .helpers import bearer, csrf_token


@pytest.fixture
def alice(factory):
    user = factory.user("alice@example.com", courses=["Course A"])
    return bearer(factory.token(user.email))


SAMPLE = {"segments": 1, "seconds": 0.5, "width": 160, "height": 90, "fps": 10}


def lesson_files(tmp_path: Path, title: str = "Uploaded", **sample) -> dict[str, bytes]:
    """The files of one small real lesson, {relative path: bytes}, with the given title."""
    folder = tmp_path / f"src-{title.replace(' ', '_')}-{len(list(tmp_path.iterdir()))}"
    write_sample_lesson(folder, **{**SAMPLE, **sample})
    manifest = json.loads((folder / "lesson.json").read_text())
    manifest["title"] = title
    (folder / "lesson.json").write_text(json.dumps(manifest))
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def package(**lessons: dict[str, bytes]) -> bytes:
    """A zip of lesson_<n>/ folders: package(lesson_1=files, lesson_2=files)."""
    return make_zip(
        {f"{name}/{path}": data for name, files in lessons.items() for path, data in files.items()}
    )


def upload(client, job_id, data: bytes, headers, query: str = ""):
    return client.post(
        f"/api/jobs/{job_id}/lessons{query}",
        data={"package": (io.BytesIO(data), "lessons.zip")},
        content_type="multipart/form-data",
        headers=headers,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the lessons root except the (empty) staging folder."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def staging_left(app) -> list[str]:
    staging = Path(app.config["LESSONS_ROOT"]) / ".uploads"
    return sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []


def test_upload_a_package_of_lessons(app, client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=0)
    data = package(lesson_1=lesson_files(tmp_path, "One"), lesson_2=lesson_files(tmp_path, "Two"))
    response = upload(client, job.id, data, alice)
    assert response.status_code == 201, response.json
    assert response.headers["Location"] == f"/api/jobs/{job.id}"
    body = response.json
    assert [lesson["path"] for lesson in body["lessons"]] == [
        f"{job.video_id}/lesson_1",
        f"{job.video_id}/lesson_2",
    ]
    assert [lesson["title"] for lesson in body["lessons"]] == ["One", "Two"]
    assert body["job"]["totalLessons"] == 2
    root = Path(app.config["LESSONS_ROOT"]) / job.video_id
    assert json.loads((root / "lesson_2" / "lesson.json").read_text())["title"] == "Two"
    assert staging_left(app) == []
    # The lessons are real: a render of one goes through.
    render = client.post(
        "/video-transform/generate-video",
        json={"jobId": job.id, "lessonPath": f"{job.video_id}/lesson_2", "outputFileName": "v.mp4"},
        headers=alice,
    )
    assert render.status_code == 202, render.json


def test_one_lesson_by_number_inside_a_wrapping_folder_replaces_it(app, client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=2)
    files = lesson_files(tmp_path, "Replaced")
    data = make_zip({f"my lesson/{path}": content for path, content in files.items()})
    response = upload(client, job.id, data, alice, "?lesson=2")
    assert response.status_code == 201, response.json
    assert [lesson["title"] for lesson in response.json["lessons"]] == ["Replaced"]
    titles = [lesson["title"] for lesson in response.json["job"]["lessons"]]
    assert titles[1] == "Replaced" and titles[0] != "Replaced"
    folder = Path(app.config["LESSONS_ROOT"]) / job.video_id / "lesson_2"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(files)


def test_a_broken_manifest_is_422_naming_lesson_and_field_and_nothing_changes(
    app, client, factory, alice, tmp_path
):
    job = factory.job("Course A", lessons=1)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    broken = lesson_files(tmp_path, "Broken")
    manifest = json.loads(broken["lesson.json"])
    manifest["segments"][0]["audio"] = "missing.wav"
    broken["lesson.json"] = json.dumps(manifest).encode()
    data = package(lesson_1=lesson_files(tmp_path, "Good"), lesson_3=broken)
    response = upload(client, job.id, data, alice)
    assert response.status_code == 422
    body = response.json
    assert body["lesson"] == "lesson_3" and body["field"] == "segments[0].audio"
    assert body["message"] == "lesson_3: segments[0].audio: file not found: 'missing.wav'"
    assert str(root) not in body["message"]
    assert snapshot(root) == before  # lesson_1 was not replaced either
    assert staging_left(app) == []
    no_manifest = package(lesson_4={"notes.txt": b"hello"})
    response = upload(client, job.id, no_manifest, alice)
    assert response.status_code == 422 and response.json["message"] == "lesson_4: lesson.json is missing."


def test_every_problem_of_a_broken_manifest_is_named_in_one_answer(app, client, factory, alice, tmp_path):
    # A user fixes them all before uploading again, instead of one upload per problem.
    job = factory.job("Course A", lessons=1)
    broken = lesson_files(tmp_path, "Broken", segments=3)
    manifest = json.loads(broken["lesson.json"])
    manifest["segments"][0]["audio"] = "missing.wav"
    manifest["segments"][2]["background"] = "blurple"
    broken["lesson.json"] = json.dumps(manifest).encode()
    response = upload(client, job.id, package(lesson_1=broken), alice)
    assert response.status_code == 422
    assert response.json["field"] == "segments[0].audio"
    assert response.json["message"] == (
        "lesson_1: segments[0].audio: file not found: 'missing.wav'; "
        "segments[2].background: not a colour: 'blurple' (use e.g. \"#1a1a2e\")"
    )


def queue_first_lesson(client, job, headers) -> None:
    queued = client.post(
        "/video-transform/generate-video",
        json={"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": "v.mp4"},
        headers=headers,
    )
    assert queued.status_code == 202


def test_a_lesson_being_rendered_is_not_replaced(app, client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=2)
    queue_first_lesson(client, job, alice)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    data = package(lesson_1=lesson_files(tmp_path, "New one"), lesson_2=lesson_files(tmp_path, "New two"))
    response = upload(client, job.id, data, alice)
    assert response.status_code == 409
    assert "lesson_1" in response.json["message"] and "lesson_2" not in response.json["message"]
    assert snapshot(root) == before
    # The other lesson alone may be replaced.
    assert (
        upload(client, job.id, package(lesson_2=lesson_files(tmp_path, "New two")), alice).status_code == 201
    )


def _entry(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    if mode is not None:
        info.external_attr = mode << 16
        info.create_system = 3
    return info


def raw_zip(*entries: tuple[zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


HOSTILE = {
    "climbs out": ("lesson_1/../../evil.txt", None, "“..”"),
    "absolute": ("/etc/evil.txt", None, "absolute"),
    "drive letter": ("C:/evil.txt", None, "absolute"),
    "backslash": ("lesson_1\\..\\evil.txt", None, "backslash"),
    "symlink": ("lesson_1/link", stat.S_IFLNK | 0o777, "symbolic links"),
    "device": ("lesson_1/dev", stat.S_IFCHR | 0o600, "device"),
    "fifo": ("lesson_1/pipe", stat.S_IFIFO | 0o600, "device, pipe"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_entries_are_refused_with_nothing_written(app, client, factory, alice, tmp_path, case):
    job = factory.job("Course A", lessons=1)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    name, mode, words = HOSTILE[case]
    good = [(_entry(f"lesson_1/{path}"), data) for path, data in lesson_files(tmp_path).items()]
    data = raw_zip(*good, (_entry(name, mode), b"/etc/passwd"))
    response = upload(client, job.id, data, alice)
    assert response.status_code == 422, response.json
    assert words in response.json["message"]
    assert snapshot(root) == before and staging_left(app) == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/etc/evil.txt").exists()


def test_not_a_zip_and_encrypted_entries(client, factory, alice):
    job = factory.job("Course A", lessons=0)
    response = upload(client, job.id, b"PK\x03\x04 this is not really a zip", alice)
    assert response.status_code == 400 and "not a zip" in response.json["message"]
    encrypted = _set_flag(raw_zip((_entry("lesson_1/lesson.json"), b"{}")), 0x1)
    response = upload(client, job.id, encrypted, alice)
    assert response.status_code == 422 and "encrypted" in response.json["message"]
    missing = client.post(
        f"/api/jobs/{job.id}/lessons", data={}, content_type="multipart/form-data", headers=alice
    )
    assert missing.status_code == 400 and "package" in missing.json["message"]


def test_too_many_entries_too_big_and_zip_bombs_are_413(app, client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=0)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    app.config["UPLOAD_MAX_FILES"] = 5
    many = make_zip({f"lesson_1/f{i}.txt": b"x" for i in range(6)})
    response = upload(client, job.id, many, alice)
    assert response.status_code == 413 and "6 entries; at most 5" in response.json["message"]
    app.config["UPLOAD_MAX_FILES"] = 2000

    # 80 MB of zeros compress to about 80 KB: a ratio of ~1000 to 1.
    bomb = make_zip({"lesson_1/lesson.json": b"{}", "lesson_1/zeros.wav": bytes(80 * 1024 * 1024)})
    assert len(bomb) < 200_000
    response = upload(client, job.id, bomb, alice)
    assert response.status_code == 413 and "zip bomb" in response.json["message"]

    app.config["UPLOAD_MAX_UNCOMPRESSED_BYTES"] = 1000
    response = upload(client, job.id, make_zip({"lesson_1/big.txt": os.urandom(2000)}), alice)
    assert response.status_code == 413 and "unpacks to 2,000 bytes" in response.json["message"]
    app.config["UPLOAD_MAX_UNCOMPRESSED_BYTES"] = 8 * 1024**3

    app.config["UPLOAD_MAX_BYTES"] = 100_000
    response = upload(client, job.id, make_zip({"lesson_1/noise.bin": os.urandom(300_000)}), alice)
    assert response.status_code == 413 and "at most 97.66 KiB" in response.json["message"]
    assert snapshot(root) == before and staging_left(app) == []


def _set_flag(data: bytes, flag: int, clear: bool = False) -> bytes:
    """Set (or clear) a general-purpose flag bit (0x1: encrypted; 0x800: names in UTF-8) on every
    entry, local and central."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        while at != -1:
            flags = struct.unpack_from("<H", out, at + offset)[0]
            struct.pack_into("<H", out, at + offset, flags & ~flag if clear else flags | flag)
            at = out.find(signature, at + 4)
    return bytes(out)


def _lie_about_size(data: bytes, name: bytes, declared: int) -> bytes:
    """Rewrite the uncompressed size of `name` in both its local and central headers."""
    out = bytearray(data)
    local = out.find(b"PK\x03\x04")
    while local != -1:
        name_len = struct.unpack_from("<H", out, local + 26)[0]
        if out[local + 30 : local + 30 + name_len] == name:
            struct.pack_into("<I", out, local + 22, declared)
        local = out.find(b"PK\x03\x04", local + 4)
    central = out.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", out, central + 28)[0]
        if out[central + 46 : central + 46 + name_len] == name:
            struct.pack_into("<I", out, central + 24, declared)
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def test_an_entry_that_unpacks_to_more_than_it_declares_is_refused(app, client, factory, alice):
    job = factory.job("Course A", lessons=0)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    honest = make_zip({"lesson_1/lesson.json": b"{}", "lesson_1/big.bin": bytes(1_000_000)})
    liar = _lie_about_size(honest, b"lesson_1/big.bin", 100)
    response = upload(client, job.id, liar, alice)
    assert response.status_code in (400, 413), response.json
    assert snapshot(root) == before and staging_left(app) == []


def _uses_shared_clip(files: dict[str, bytes]) -> dict[str, bytes]:
    """The lesson with its first segment showing ../shared/clip.mp4 instead of its image."""
    manifest = json.loads(files["lesson.json"])
    segment = manifest["segments"][0]
    segment.pop("image", None)
    segment["video"] = "../shared/clip.mp4"
    return {**files, "lesson.json": json.dumps(manifest).encode()}


def test_files_beside_the_lessons_go_to_the_video_folder(app, client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=0)
    root = Path(app.config["LESSONS_ROOT"])
    clip = write_clip(tmp_path / "clip.mp4", 1.0, fps=10, size=(160, 90), freq=None).read_bytes()
    files = {f"lesson_1/{k}": v for k, v in _uses_shared_clip(lesson_files(tmp_path)).items()}
    response = upload(client, job.id, make_zip({**files, "shared/clip.mp4": clip}), alice)
    assert response.status_code == 201, response.json
    assert (root / job.video_id / "shared" / "clip.mp4").read_bytes() == clip
    # A later package may lean on the shared file already there.
    again = {f"lesson_2/{k}": v for k, v in _uses_shared_clip(lesson_files(tmp_path, "Two")).items()}
    assert upload(client, job.id, make_zip(again), alice).status_code == 201
    # The download carries it, and uploads again elsewhere.
    whole = client.get(f"/api/jobs/{job.id}/lessons/package", headers=alice)
    assert "shared/clip.mp4" in zipfile.ZipFile(io.BytesIO(whole.data)).namelist()
    other = factory.job("Course A", lessons=0)
    assert upload(client, other.id, whole.data, alice).status_code == 201
    # Without it, the lesson is refused naming the field; nothing changes.
    before = snapshot(root)
    third = factory.job("Course A", lessons=0)
    refused = upload(client, third.id, make_zip(files), alice)
    assert refused.status_code == 422 and refused.json["field"] == "segments[0].video"
    assert snapshot(root) == before and staging_left(app) == []


def test_what_cannot_sit_beside_the_lessons_is_refused(client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=0)
    files = {f"lesson_1/{k}": v for k, v in lesson_files(tmp_path).items()}
    for extra, words in [({".env": b"x"}, "cannot sit beside"), ({"lesson_2": b"x"}, "cannot sit beside")]:
        response = upload(client, job.id, make_zip({**files, **extra}), alice)
        assert response.status_code == 422 and words in response.json["message"], response.json
    only_shared = upload(client, job.id, make_zip({"README.txt": b"hi"}), alice)
    assert only_shared.status_code == 422 and "no lesson_<n>/ folder" in only_shared.json["message"]
    # Archiver junk is ignored, not refused.
    junk = make_zip({**files, "__MACOSX/lesson_1/._lesson.json": b"x", "lesson_1/.DS_Store": b"x"})
    assert upload(client, job.id, junk, alice).status_code == 201


def test_shared_files_wait_for_every_render_of_the_video(app, client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=2)
    queue_first_lesson(client, job, alice)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    data = make_zip({**{f"lesson_2/{k}": v for k, v in lesson_files(tmp_path).items()}, "notes.txt": b"x"})
    response = upload(client, job.id, data, alice)
    assert response.status_code == 409 and "lesson_1" in response.json["message"]
    assert snapshot(root) == before


def test_course_scope_and_credentials(app, client, factory, alice, tmp_path):
    foreign = factory.job("Course B", lessons=1)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    data = package(lesson_1=lesson_files(tmp_path, "Mine now"))
    assert upload(client, foreign.id, data, alice).status_code == 404
    assert upload(client, foreign.id, data, {}).status_code == 401
    assert snapshot(root) == before
    assert client.get(f"/api/jobs/{foreign.id}/lessons/package", headers=alice).status_code == 404
    assert client.get(f"/api/jobs/{foreign.id}/lessons/1/package", headers=alice).status_code == 404


def test_download_gives_the_package_back_and_it_uploads_again(app, client, factory, alice):
    job = factory.job("Course A", lessons=2)
    response = client.get(f"/api/jobs/{job.id}/lessons/package", headers=alice)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert f"{job.video_id}-lessons.zip" in response.headers["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert "lesson_1/lesson.json" in names and "lesson_2/lesson.json" in names
    one = client.get(f"/api/jobs/{job.id}/lessons/2/package", headers=alice)
    assert one.status_code == 200
    assert all(name.startswith("lesson_2/") for name in zipfile.ZipFile(io.BytesIO(one.data)).namelist())
    assert client.get(f"/api/jobs/{job.id}/lessons/9/package", headers=alice).status_code == 404
    other = factory.job("Course A", lessons=0)
    again = upload(client, other.id, response.data, alice)
    assert again.status_code == 201 and len(again.json["lessons"]) == 2


def test_uploads_spool_to_disk_beside_the_lessons(app, factory):
    job = factory.job("Course A", lessons=0)
    with app.test_request_context(f"/api/jobs/{job.id}/lessons", method="POST"):
        from flask import request

        stream = request._get_file_stream(10 * 1024**3, "application/zip", "big.zip")
        target = os.readlink(f"/proc/self/fd/{stream.fileno()}")
        stream.close()
    assert target.startswith(str(Path(app.config["LESSONS_ROOT"]).resolve() / ".uploads"))


def test_upload_from_the_job_page(app, client, auth, factory, tmp_path):
    user = factory.user("bob@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=0)
    foreign = factory.job("Course B", lessons=0)
    auth.login(user.email)
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and f"/jobs/{job.id}/lessons" in page
    token = csrf_token(client, f"/jobs/{job.id}")
    data = package(lesson_1=lesson_files(tmp_path, "Page one"), lesson_2=lesson_files(tmp_path, "Page two"))

    def post(job_id, body: bytes, htmx=True, **fields):
        return client.post(
            f"/jobs/{job_id}/lessons",
            data={"package": (io.BytesIO(body), "p.zip"), **fields},
            content_type="multipart/form-data",
            headers={"HX-Request": "true"} if htmx else {},
        )

    assert post(job.id, data).status_code == 400  # no CSRF token
    response = post(job.id, data, csrf_token=token)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="status-panel"' in html
    assert "Uploaded 2 lessons: lesson_1, lesson_2." in html and "Page two" in html
    refused = post(job.id, make_zip({"../evil": b"x"}), csrf_token=token)
    assert refused.status_code == 422 and "paths with “..” are not allowed" in refused.get_data(as_text=True)
    assert 'class="error-message"' in refused.text  # what the page's script shows beside the form
    one = post(
        job.id, make_zip(dict(lesson_files(tmp_path, "Third"))), csrf_token=token, lesson="3", htmx=False
    )
    assert one.status_code == 302
    assert "Uploaded 1 lesson: lesson_3." in client.get(one.headers["Location"]).get_data(as_text=True)
    assert post(foreign.id, data, csrf_token=token).status_code == 404
    assert "Download lesson package" in client.get(f"/jobs/{job.id}").get_data(as_text=True)


def test_a_refused_upload_counts_segments_from_one_on_the_page(client, auth, factory, tmp_path):
    """As the lessons table does ("segment 2, image"); the API keeps the JSON path."""
    user = factory.user("nan@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=0)
    files = lesson_files(tmp_path, "Two segments", segments=2)
    manifest = json.loads(files["lesson.json"])
    manifest["segments"][1]["image"] = "images/missing.png"
    files["lesson.json"] = json.dumps(manifest).encode()
    auth.login(user.email)
    refused = client.post(
        f"/jobs/{job.id}/lessons",
        data={
            "package": (io.BytesIO(package(lesson_1=files)), "p.zip"),
            "csrf_token": csrf_token(client, "/jobs"),
        },
        content_type="multipart/form-data",
        headers={"HX-Request": "true"},
    )
    assert (
        refused.status_code == 422
        and "segment 2, image" in refused.text
        and "segments[1]" not in refused.text
    )
    api = upload(client, job.id, package(lesson_1=files), bearer(factory.token(user.email)))
    assert api.status_code == 422 and "segments[1].image" in api.json["message"]


def test_the_cron_sweeps_staging_folders_an_upload_left_behind(app):
    from webapp import tasks

    staging = Path(app.config["LESSONS_ROOT"]) / ".uploads"
    (staging / "upload-dead" / "new" / "lesson_1").mkdir(parents=True)
    (staging / "upload-live").mkdir()
    day_ago = time.time() - 25 * 3600
    os.utime(staging / "upload-dead", (day_ago, day_ago))
    with app.app_context():
        assert tasks.sweep_uploads() == 1
    assert staging_left(app) == ["upload-live"]


def test_a_name_that_is_both_a_file_and_a_folder_is_refused(app, client, factory, alice, tmp_path):
    job = factory.job("Course A", lessons=1)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    files = {f"lesson_1/{k}": v for k, v in lesson_files(tmp_path).items()}
    for clash in ({"lesson_1/notes": b"a", "lesson_1/notes/more.txt": b"b"}, {"x": b"a", "x/y": b"b"}):
        response = upload(client, job.id, make_zip({**files, **clash}), alice)
        assert response.status_code == 422, response.json
        assert "both a file and a folder" in response.json["message"]
    assert snapshot(root) == before and staging_left(app) == []


def test_two_folders_for_one_lesson_number_are_refused(app, client, factory, alice, tmp_path):
    """lesson_1/ and lesson_01/ are both lesson 1: their files landed in one folder (a 500 when
    both had a lesson.json)."""
    job = factory.job("Course A", lessons=1)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    files = lesson_files(tmp_path)
    both = {
        **{f"lesson_1/{k}": v for k, v in files.items()},
        **{f"lesson_01/{k}": v for k, v in files.items()},
    }
    response = upload(client, job.id, make_zip(both), alice)
    assert response.status_code == 422, response.json
    assert "“lesson_01/” and “lesson_1/” are both lesson 1" in response.json["message"]
    assert snapshot(root) == before and staging_left(app) == []


def test_a_shared_file_that_clashes_with_the_video_folder_changes_nothing(
    app, client, factory, alice, tmp_path
):
    """The video folder holds a file where the package brings a folder (or the other way round):
    409 naming it, and nothing of the package is installed, shared files included."""
    job = factory.job("Course A", lessons=1)
    root = Path(app.config["LESSONS_ROOT"])
    video = root / job.video_id
    (video / "source.mp4").write_bytes(b"OLD")
    (video / "sub").write_bytes(b"a file")
    (video / "dir").mkdir()
    (video / "dir" / "kept.txt").write_bytes(b"kept")
    before = snapshot(root)
    files = {f"lesson_1/{k}": v for k, v in lesson_files(tmp_path, "New").items()}
    for clash, name in (({"sub/evil.txt": b"x"}, "sub"), ({"dir": b"x"}, "dir")):
        response = upload(client, job.id, make_zip({**files, "source.mp4": b"NEW", **clash}), alice)
        assert response.status_code == 409, response.json
        assert f"“{name}”" in response.json["message"]
        assert snapshot(root) == before and staging_left(app) == []


def test_a_failure_while_installing_puts_everything_back(app, client, factory, alice, tmp_path, monkeypatch):
    """The disk refuses the last rename (full, say): the shared files and lessons moved before it
    go back, so the lessons are as they were; a full disk is said as such (507), not as a 500."""
    from webapp.services import uploads

    job = factory.job("Course A", lessons=1)
    root = Path(app.config["LESSONS_ROOT"])
    (root / job.video_id / "source.mp4").write_bytes(b"OLD")
    before = snapshot(root)
    real_rename = os.rename

    def failing(source, target):
        if Path(target).name == "lesson_2":
            raise OSError(28, "No space left on device")
        return real_rename(source, target)

    monkeypatch.setattr(uploads.os, "rename", failing)
    data = package(lesson_1=lesson_files(tmp_path, "New one"), lesson_2=lesson_files(tmp_path, "New two"))
    response = upload(client, job.id, make_zip({**zipfile_entries(data), "source.mp4": b"NEW"}), alice)
    assert response.status_code == 507 and "enough disk space" in response.json["message"]
    assert response.headers["Retry-After"] == "300"
    assert snapshot(root) == before and staging_left(app) == []


def zipfile_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_package_of_lesson_folders_sent_with_a_number_says_to_leave_the_number_out(
    app, client, factory, alice, tmp_path
):
    """Lesson folders uploaded with "only lesson number 5" read "lesson_5: lesson.json is
    missing." though every folder had its lesson.json: the number was what was wrong."""
    job = factory.job("Course A", lessons=1)
    data = package(lesson_3=lesson_files(tmp_path, "Three"), lesson_4=lesson_files(tmp_path, "Four"))
    response = upload(client, job.id, data, alice, "?lesson=5")
    assert response.status_code == 422
    message = response.json["message"]
    assert "lesson_3/" in message and "lesson_4/" in message and "leave the lesson number" in message
    assert upload(client, job.id, data, alice).status_code == 201  # without the number: both go in


def test_names_a_mac_wrote_in_utf8_without_saying_so_are_read_as_utf8(app, client, factory, alice, tmp_path):
    """macOS's Archive Utility (and other archivers) write names in UTF-8 without setting the zip
    flag that says so, and with accents decomposed; zipfile then reads them as code page 437,
    the format's default: "ภาพ.png" became "α╕áα╕▓α╕₧.png" and lesson.json's picture was "file not
    found". A name that is valid UTF-8 is read as UTF-8; the accents are matched either way."""
    import unicodedata

    job = factory.job("Course A", lessons=0)
    files = lesson_files(tmp_path, "Mac")
    manifest = json.loads(files["lesson.json"])
    picture = files.pop(manifest["segments"][0]["image"])
    files[unicodedata.normalize("NFD", "ภาพ/ảnh đầu.png")] = picture
    manifest["segments"][0]["image"] = "ภาพ/ảnh đầu.png"
    files["lesson.json"] = json.dumps(manifest, ensure_ascii=False).encode()
    data = _set_flag(package(lesson_1=files), 0x800, clear=True)
    assert all(not info.flag_bits & 0x800 for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    response = upload(client, job.id, data, alice)
    assert response.status_code == 201, response.json
    lesson = Path(app.config["LESSONS_ROOT"]) / job.video_id / "lesson_1"
    assert (lesson / unicodedata.normalize("NFD", "ภาพ/ảnh đầu.png")).read_bytes() == picture


def _legacy_zip(files: dict[str, bytes], raw_names: dict[str, bytes], unicode_path: bool = False) -> bytes:
    """A package whose names in `raw_names` are written as those bytes, with no UTF-8 flag: what
    Windows' own "Compressed folder" writes in the code page of its language. `unicode_path`:
    with the UTF-8 name in an Info-ZIP Unicode Path extra field too, as 7-Zip or WinRAR add it."""
    import zlib

    placeholders = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            if name in raw_names:
                raw = raw_names[name]
                info.filename = placeholder = f"{len(placeholders):0{len(raw)}d}"[-len(raw) :]
                placeholders[placeholder.encode()] = raw
                if unicode_path:
                    utf8 = name.encode()
                    info.extra = struct.pack("<HHBI", 0x7075, 5 + len(utf8), 1, zlib.crc32(raw)) + utf8
            archive.writestr(info, data)
    out = buffer.getvalue()
    for placeholder, raw in placeholders.items():  # renamed in the local and central headers alike
        assert out.count(placeholder) == 2, placeholder
        out = out.replace(placeholder, raw)
    return out


def _thai_lesson(tmp_path) -> tuple[dict[str, bytes], str, bytes]:
    """One lesson's files whose picture is "lesson_1/ภาพ/สไลด์ 1.png" (lesson.json says so)."""
    files = lesson_files(tmp_path, "Thai names")
    manifest = json.loads(files["lesson.json"])
    picture = files.pop(manifest["segments"][0]["image"])
    manifest["segments"][0]["image"] = "ภาพ/สไลด์ 1.png"
    files = {f"lesson_1/{path}": data for path, data in files.items()}
    files["lesson_1/lesson.json"] = json.dumps(manifest, ensure_ascii=False).encode()
    files["lesson_1/ภาพ/สไลด์ 1.png"] = picture
    return files, "lesson_1/ภาพ/สไลด์ 1.png", picture


@pytest.mark.parametrize("unicode_path", [False, True], ids=["windows-explorer", "unicode-path-field"])
def test_a_zip_windows_made_with_thai_names_keeps_them(app, client, factory, alice, tmp_path, unicode_path):
    """Windows' own zipping writes names in its language's code page (874, Thai) and does not say
    so; zipfile read them as code page 437 ("ÓéáÑ..."), and the lesson's picture was "file not
    found". The code page is the one under which the package's lesson.json names its files; the
    UTF-8 name 7-Zip and WinRAR add beside the legacy one is used when there is one."""
    job = factory.job("Course A", lessons=0)
    files, name, picture = _thai_lesson(tmp_path)
    raw = {name: name.encode("cp874")}
    if unicode_path:  # a legacy name in another code page, and the right name beside it
        raw = {name: name.encode("cp874").replace("ภาพ".encode("cp874"), b"\xa1\xa2\xa3")}
    data = _legacy_zip(files, raw, unicode_path=unicode_path)
    assert all(not info.flag_bits & 0x800 for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    response = upload(client, job.id, data, alice)
    assert response.status_code == 201, response.json
    lesson = Path(app.config["LESSONS_ROOT"]) / job.video_id / "lesson_1"
    assert (lesson / "ภาพ" / "สไลด์ 1.png").read_bytes() == picture


def test_legacy_names_no_lesson_json_mentions_stay_as_the_zip_format_reads_them(
    app, client, factory, alice, tmp_path
):
    """Without evidence (no lesson.json names the file), a name is read in code page 437, the
    format's default: a Western "café.png" from an old DOS-style archiver arrives as itself."""
    job = factory.job("Course A", lessons=0)
    files = {f"lesson_1/{path}": data for path, data in lesson_files(tmp_path, "Extra").items()}
    files["lesson_1/notes/café.txt"] = b"not used by the lesson"
    data = _legacy_zip(files, {"lesson_1/notes/café.txt": "lesson_1/notes/café.txt".encode("cp437")})
    response = upload(client, job.id, data, alice)
    assert response.status_code == 201, response.json
    lesson = Path(app.config["LESSONS_ROOT"]) / job.video_id / "lesson_1"
    assert (lesson / "notes" / "café.txt").read_bytes() == b"not used by the lesson"


def test_a_unicode_path_field_cannot_smuggle_a_name_past_the_checks(app, client, factory, alice, tmp_path):
    """The UTF-8 name of a Unicode Path extra field is checked like any name: one that climbs
    out ("../") is refused and nothing is written."""
    import zlib

    job = factory.job("Course A", lessons=0)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    files = {f"lesson_1/{path}": data for path, data in lesson_files(tmp_path, "Sly").items()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo("lesson_1/harmless.txt")
        sly = b"lesson_1/../../escaped.txt"
        info.extra = struct.pack("<HHBI", 0x7075, 5 + len(sly), 1, zlib.crc32(info.filename.encode())) + sly
        archive.writestr(info, b"x")
    response = upload(client, job.id, buffer.getvalue(), alice)
    assert response.status_code == 422 and "“..”" in response.json["message"], response.json
    assert snapshot(root) == before and staging_left(app) == []
