"""Uploaded lesson packages and `flask demo` with media on an S3-compatible store (a real
SeaweedFS): a package lands in the bucket as a version of the lesson and a pointer switched last,
so readers (discovery, the check before queueing, a render fetching the lesson) see the old lesson
or the new one, whole; nothing of it is left under LESSONS_ROOT.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from pathlib import Path
from urllib.parse import unquote
from urllib.request import urlopen

import pytest

from webapp.storage import lessons as store_lessons
from webapp.storage.s3 import S3Store

from .helpers import app_store, bearer, decode, media_in_bucket, wait_for
from .test_uploads import lesson_files, make_zip, package, upload

pytestmark = pytest.mark.slow


@pytest.fixture
def config(config, s3_bucket, monkeypatch):
    return media_in_bucket(config, s3_bucket, monkeypatch)


@pytest.fixture
def store(app) -> S3Store:
    return app_store(app)


@pytest.fixture
def alice(factory):
    user = factory.user("alice@example.com", courses=["Course A"])
    return bearer(factory.token(user.email))


def stored_lesson(store: S3Store, lesson_path: str) -> dict[str, bytes]:
    """The lesson as readers see it: {path inside the lesson: bytes}."""
    found = {}
    for name, info in store_lessons.lesson_entries(store, lesson_path):
        with store.open(info.key) as reader:
            found[name] = reader.read()
    return found


def lesson_in_bucket(app, factory, auth, store: S3Store, **sample):
    """A job of Course A whose one lesson is in the bucket only (put there file by file, as
    earlier pipeline steps do), and a member of the course logged in: (job, video id, LESSONS_ROOT)."""
    video_id = uuid.uuid4().hex[:11]
    root = Path(app.config["LESSONS_ROOT"])
    factory.lessons(video_id, 1, **sample)
    for path in sorted((root / video_id).rglob("*")):
        if path.is_file():
            store.upload(path, f"lessons/{path.relative_to(root).as_posix()}")
            path.unlink()
    job = factory.job("Course A", video_id=video_id, lessons=0)
    user = factory.user("mali@example.com", courses=["Course A"])
    auth.login(user.email)
    return job, video_id, root


def keys_under(store: S3Store, prefix: str) -> list[str]:
    return [info.key[len(prefix) :] for info in store.list(prefix)]


def render(client, headers, processes, job_id, lesson_path, name) -> dict:
    body = {"jobId": job_id, "lessonPath": lesson_path, "outputFileName": name}
    queued = client.post("/video-transform/generate-video", json=body, headers=headers)
    assert queued.status_code == 202, queued.json
    render_id = queued.json["renderId"]
    if not processes.every_process():
        processes.worker()
    return wait_for(
        lambda: (
            (r := client.get(f"/api/renders/{render_id}", headers=headers).json)["state"]
            in {"completed", "failed", "cancelled"}
            and r
        ),
        90,
        f"render {render_id} to end",
    )


def test_an_uploaded_package_lands_in_the_store_and_renders_and_a_new_one_replaces_it(
    app, client, factory, alice, store, processes, tmp_path
):
    job = factory.job("Course A", lessons=0)
    lesson_path = f"{job.video_id}/lesson_1"
    first = {**lesson_files(tmp_path, "First"), "notes/old.txt": b"only in the first"}
    response = upload(client, job.id, package(lesson_1=first), alice)
    assert response.status_code == 201, response.json
    [lesson] = response.json["lessons"]
    assert lesson["path"] == lesson_path and lesson["title"] == "First" and lesson["problem"] is None
    assert not (Path(app.config["LESSONS_ROOT"]) / job.video_id).exists()
    assert stored_lesson(store, lesson_path) == first
    assert list(store.temporaries()) == []

    done = render(client, alice, processes, job.id, lesson_path, "one.mp4")
    assert done["state"] == "completed", done
    store.download(done["outputPath"], tmp_path / "one.mp4")
    one = decode(tmp_path / "one.mp4")
    assert (one["video_codec"], one["size"], one["frames"]) == ("h264", (160, 90), 5)

    # A package whose files differ: two segments, other images and sounds, no notes/old.txt.
    second = {**lesson_files(tmp_path, "Second", segments=2, width=320, height=180), "new.txt": b"new"}
    assert set(second) != set(first)
    replaced = upload(client, job.id, package(lesson_1=second), alice)
    assert replaced.status_code == 201, replaced.json
    assert replaced.json["lessons"][0]["title"] == "Second"
    assert stored_lesson(store, lesson_path) == second
    # Exactly the new files are left: the pointer and the new version, the old version deleted.
    prefix = f"lessons/{lesson_path}/"
    [token] = {key.split("/")[1] for key in keys_under(store, prefix) if key.startswith(".lesson-versions/")}
    assert sorted(keys_under(store, prefix)) == sorted(
        [".version.json"] + [f".lesson-versions/{token}/{name}" for name in second]
    )
    # The download gives exactly the new files back.
    zipped = client.get(f"/api/jobs/{job.id}/lessons/1/package", headers=alice)
    assert zipped.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(zipped.data)).namelist()
    assert sorted(names) == sorted(f"lesson_1/{name}" for name in second)

    # The render reads the new lesson, not what the render cache kept of the old one.
    again = render(client, alice, processes, job.id, lesson_path, "two.mp4")
    assert again["state"] == "completed", again
    store.download(again["outputPath"], tmp_path / "two.mp4")
    two = decode(tmp_path / "two.mp4")
    assert (two["size"], two["frames"]) == ((320, 180), 10)


def test_a_package_replaces_a_lesson_put_in_the_bucket_by_other_means(
    app, client, factory, alice, store, tmp_path
):
    video_id = uuid.uuid4().hex[:11]
    root = Path(app.config["LESSONS_ROOT"])
    factory.lessons(video_id, 2)
    for path in sorted((root / video_id).rglob("*")):  # the earlier pipeline's layout, no pointer
        if path.is_file():
            store.upload(path, f"lessons/{path.relative_to(root).as_posix()}")
            path.unlink()
    job = factory.job("Course A", video_id=video_id, lessons=0)
    assert len(job.lessons) == 2
    files = {**lesson_files(tmp_path, "Uploaded"), "extra.txt": b"x"}
    response = upload(client, job.id, make_zip(files), alice, "?lesson=2")
    assert response.status_code == 201, response.json
    assert stored_lesson(store, f"{video_id}/lesson_2") == files
    # The folder's own files went; lesson_1 is untouched.
    assert all(
        key.startswith((".version.json", ".lesson-versions/"))
        for key in keys_under(store, f"lessons/{video_id}/lesson_2/")
    )
    assert "lesson.json" in keys_under(store, f"lessons/{video_id}/lesson_1/")
    detail = client.get(f"/api/jobs/{job.id}", headers=alice).json
    assert [item["title"] for item in detail["lessons"]][1] == "Uploaded"


def test_an_upload_that_fails_midway_leaves_the_old_lesson_whole(
    app, client, factory, alice, store, s3_server, tmp_path
):
    job = factory.job("Course A", lessons=0)
    lesson_path = f"{job.video_id}/lesson_1"
    old = lesson_files(tmp_path, "Old")
    assert upload(client, job.id, package(lesson_1=old), alice).status_code == 201
    [old_version] = store_lessons.lesson_entries(store, lesson_path)[:1]
    old_token = old_version[1].key.split("/")[4]

    # Many files, so the store can be stopped while they go up: once the first of the new
    # version is in the bucket, SeaweedFS is paused (it accepts connections, never answers).
    new = {**lesson_files(tmp_path, "New"), **{f"extra/{n}.bin": bytes(2000) for n in range(80)}}
    paused = threading.Event()

    def pause_midway():
        prefix = f"lessons/{lesson_path}/.lesson-versions/"
        while not paused.is_set():
            if any(not key.startswith(old_token) for key in keys_under(store, prefix)):
                s3_server.pause()
                paused.set()

    watcher = threading.Thread(target=pause_midway, daemon=True)
    watcher.start()
    try:
        failed = upload(client, job.id, package(lesson_1=new), alice)
    finally:
        paused.set()
        watcher.join(10)
        s3_server.resume()
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "30", failed.json
    assert "media store" in failed.json["message"]

    # Readers see the old lesson, whole; the job's lesson is unchanged.
    assert stored_lesson(store, lesson_path) == old
    detail = client.get(f"/api/jobs/{job.id}", headers=alice).json
    assert [item["title"] for item in detail["lessons"]] == ["Old"]
    rescan = client.post(f"/api/jobs/{job.id}/rescan", headers=alice).json
    assert rescan["job"]["lessons"][0]["title"] == "Old"
    # What the broken upload left (it could not remove it while the store was paused) is swept.
    with app.app_context():
        from webapp.services import storage

        storage.sweep_temporaries(older_than=0)
    prefix = f"lessons/{lesson_path}/"
    assert sorted(keys_under(store, prefix)) == sorted(
        [".version.json"] + [f".lesson-versions/{old_token}/{name}" for name in old]
    )
    # The same package goes through once the store answers.
    assert upload(client, job.id, package(lesson_1=new), alice).status_code == 201
    assert stored_lesson(store, lesson_path) == new


def test_shared_files_of_a_package_go_to_the_bucket_and_lessons_render_with_them(
    app, client, factory, alice, store, tmp_path
):
    from webapp.render.sample import write_clip

    from .test_uploads import _uses_shared_clip

    job = factory.job("Course A", lessons=0)
    clip = write_clip(tmp_path / "clip.mp4", 1.0, fps=10, size=(160, 90), freq=None).read_bytes()
    files = {f"lesson_1/{k}": v for k, v in _uses_shared_clip(lesson_files(tmp_path)).items()}
    response = upload(client, job.id, make_zip({**files, "shared/clip.mp4": clip}), alice)
    assert response.status_code == 201, response.json
    with store.open(f"lessons/{job.video_id}/shared/clip.mp4") as reader:
        assert reader.read() == clip
    # A later package leans on the shared file in the bucket (fetched to check it).
    again = {f"lesson_2/{k}": v for k, v in _uses_shared_clip(lesson_files(tmp_path, "Two")).items()}
    second = upload(client, job.id, make_zip(again), alice)
    assert second.status_code == 201 and second.json["lessons"][0]["problem"] is None
    # The check before queueing reads it too.
    body = {"jobId": job.id, "lessonPath": f"{job.video_id}/lesson_2"}
    assert client.post("/video-transform/generate-video", json=body, headers=alice).status_code == 202


def test_flask_demo_puts_its_lessons_in_the_bucket_where_discovery_finds_them(app, store, runner):
    from webapp.services.demo import DEMO_VIDEO_ID, SHOWCASE_LESSON

    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert not (Path(app.config["LESSONS_ROOT"]) / DEMO_VIDEO_ID).exists()
    for number in range(1, SHOWCASE_LESSON + 1):
        assert "lesson.json" in stored_lesson(store, f"{DEMO_VIDEO_ID}/lesson_{number}")
    with app.app_context():
        from webapp.services import jobs

        found = jobs.discover(DEMO_VIDEO_ID, Path(app.config["LESSONS_ROOT"]))
    assert [lesson.number for lesson in found.lessons] == list(range(1, SHOWCASE_LESSON + 1))
    assert [lesson.problem for lesson in found.lessons] == [None] * SHOWCASE_LESSON
    # Run again (as `make run` does): nothing new is written.
    before = [item.key for item in store.list(f"lessons/{DEMO_VIDEO_ID}/")]
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert [item.key for item in store.list(f"lessons/{DEMO_VIDEO_ID}/")] == before


def test_readers_see_one_version_whole_while_a_lesson_is_replaced_again_and_again(app, store, tmp_path):
    from webapp.services import media

    lesson_path = f"{uuid.uuid4().hex[:11]}/lesson_1"
    versions = []
    for name, count in (("a", 12), ("b", 20)):  # other files, other contents, other numbers of them
        folder = tmp_path / name
        for n in range(count):
            (folder / "sub").mkdir(parents=True, exist_ok=True)
            (folder / "sub" / f"{name}{n}.txt").write_text(f"{name} {n}")
        (folder / "lesson.json").write_text(name)
        versions.append(
            {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        )
    store_lessons.replace(store, lesson_path, tmp_path / "a")
    # A reader that listed version a, which is replaced (and deleted) before it fetches the files,
    # starts over and copies b, whole, with nothing of a left in its copy.
    stale = [
        (f"lessons/{lesson_path}/{name}", info)
        for name, info in store_lessons.lesson_entries(store, lesson_path)
    ]
    store_lessons.replace(store, lesson_path, tmp_path / "b")
    listings = iter([stale])
    with app.app_context(), media.private_folder() as (cache, folder):
        media.fetch(
            store,
            lambda: next(listings, None) or media.lesson_objects(store, lesson_path),
            folder,
            cache,
            "test",
        )
        copy = folder / "lessons" / lesson_path
        assert {
            p.relative_to(copy).as_posix(): p.read_bytes() for p in copy.rglob("*") if p.is_file()
        } == versions[1]
    stop = threading.Event()

    turns = []

    def replace_forever():
        while not stop.is_set():
            store_lessons.replace(store, lesson_path, tmp_path / ("a" if len(turns) % 2 == 0 else "b"))
            turns.append(1)

    writer = threading.Thread(target=replace_forever, daemon=True)
    writer.start()
    seen = []
    try:
        with app.app_context():
            deadline = time.monotonic() + 90
            while (len(seen) < 30 or len(turns) < 4) and writer.is_alive() and time.monotonic() < deadline:
                with media.lesson_copy(lesson_path) as folder:
                    got = {
                        p.relative_to(folder).as_posix(): p.read_bytes()
                        for p in folder.rglob("*")
                        if p.is_file()
                    }
                assert got in versions, sorted(got)
                seen.append(versions.index(got))
    finally:
        stop.set()
        writer.join(30)
    assert len(turns) >= 4, f"the writer replaced the lesson {len(turns)} times"
    assert set(seen) == {0, 1}, seen  # both were read while they changed under the reader


def test_a_file_replaced_from_the_lesson_files_page_lands_as_a_new_version(
    app, client, factory, auth, store, tmp_path
):
    """The lesson files page (tests/test_lesson_files.py) on a bucket: the page lists what the
    pointer names, a replaced file lands with the lesson's other files in a new version."""
    from .helpers import csrf_token

    job, video_id, root = lesson_in_bucket(app, factory, auth, store)
    page = f"/jobs/{job.id}/lessons/1/files"
    assert "<code>audio/1.wav</code>" in client.get(page).text
    before = stored_lesson(store, f"{video_id}/lesson_1")
    new = before["images/1.png"]
    response = client.post(
        page,
        data={
            "file": (io.BytesIO(new), "slide.png"),
            "path": "images/2.png",
            "csrf_token": csrf_token(client, page),
        },
        content_type="multipart/form-data",
    )
    assert "Added images/2.png." in client.get(response.headers["Location"]).text
    assert stored_lesson(store, f"{video_id}/lesson_1") == {**before, "images/2.png": new}
    assert store_lessons.read_pointer(store, f"{video_id}/lesson_1") is not None
    download = client.get(f"{page}/images/2.png")  # a short-lived link to the bucket, saved as a file
    assert download.status_code == 302 and "attachment" in unquote(download.headers["Location"])
    with urlopen(download.headers["Location"], timeout=10) as answer:
        assert answer.read() == new and answer.headers["Content-Disposition"].startswith("attachment")
    api = f"/api/jobs/{job.id}/lessons/1/files"
    tag = client.get(f"{api}/images/2.png").headers["ETag"]  # the object's version, for If-Match
    listed = {f["path"]: f["etag"] for f in client.get(api).json["files"]}
    assert tag == f'"{listed["images/2.png"]}"'
    again = client.post(
        f"{api}?path=images/2.png",
        data={"file": (io.BytesIO(new), "slide.png")},
        content_type="multipart/form-data",
        headers={"If-Match": tag, "X-CSRFToken": csrf_token(client, page)},
    )
    assert again.status_code == 200, again.json
    assert not any(path.is_file() for path in (root / video_id).rglob("*"))  # nothing local


def test_a_change_to_a_lesson_in_the_bucket_sends_and_fetches_only_what_changed(
    app, client, factory, auth, store, monkeypatch
):
    """Each caption fixed sent the lesson's every file again (a clip of hundreds of MB) and fetched
    each twice (to check the change, and the rescan after it). Now the files kept are copied in the
    bucket, and what was just put there is in the render cache as that object: a second change
    uploads one file, lesson.json, and downloads nothing."""
    from .test_lesson_words import fields

    job, video_id, root = lesson_in_bucket(app, factory, auth, store, segments=2)
    page = f"/jobs/{job.id}/lessons/1/words"

    def save(caption: str) -> None:
        form = fields(client.get(page).text)
        response = client.post(page, data={**form, "s1-caption": caption}, content_type="multipart/form-data")
        assert "Saved." in client.get(response.headers["Location"]).text

    assert fields(client.get(page).text)["s2-title"] == "Tones: ปี่ ฟ้า น้ำ ป่า"  # read from the bucket
    save("first")  # the lesson was put there file by file: it becomes a version of its own
    before = stored_lesson(store, f"{video_id}/lesson_1")
    sent, fetched = [], []
    upload, download = store.upload, store.download
    monkeypatch.setattr(
        store, "upload", lambda source, key, progress=None: sent.append(key) or upload(source, key, progress)
    )
    monkeypatch.setattr(store, "download", lambda key, dest: fetched.append(key) or download(key, dest))
    save("second")
    after = stored_lesson(store, f"{video_id}/lesson_1")
    assert json.loads(after["lesson.json"])["segments"][0]["caption"] == "second"
    assert {k: v for k, v in after.items() if k != "lesson.json"} == {
        k: v for k, v in before.items() if k != "lesson.json"
    }
    files = [key for key in sent if not key.endswith(store_lessons.POINTER)]
    assert len(files) == 1 and files[0].endswith("/lesson.json"), sent
    assert fetched == []
    assert not any(path.is_file() for path in (root / video_id).rglob("*"))  # nothing local


def test_a_version_copies_only_the_lessons_own_objects(app, store, tmp_path):
    """put_version copies in the bucket only objects of the lesson's own versions: a key of another
    lesson (another course's) is not copied but the local file uploaded."""
    other = tmp_path / "other"
    (other / "audio").mkdir(parents=True)
    (other / "audio" / "1.wav").write_bytes(b"theirs")
    theirs = store_lessons.put_version(store, "vidB/lesson_1", other)
    mine = tmp_path / "mine"
    (mine / "audio").mkdir(parents=True)
    (mine / "audio" / "1.wav").write_bytes(b"mine")
    stolen = f"lessons/vidB/lesson_1/{store_lessons.VERSIONS}/{theirs.token}/audio/1.wav"
    version = store_lessons.put_version(store, "vidA/lesson_1", mine, copies={"audio/1.wav": stolen})
    key = f"lessons/vidA/lesson_1/{store_lessons.VERSIONS}/{version.token}/audio/1.wav"
    with store.open(key) as reader:
        assert reader.read() == b"mine"
