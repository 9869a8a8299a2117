"""The storage interface, on the local disk and on a real S3-compatible server (SeaweedFS).

Every test of the interface runs against both backends: what the app does with one store it
can do with the other.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from webapp.storage import (
    KeyRefused,
    LocalStore,
    ObjectMissing,
    RangeRefused,
    StoreError,
    StoreUnavailable,
    open_store,
)
from webapp.storage.s3 import S3Store

from .helpers import ROOT, wait_for

MIB = 1024 * 1024
# Parts of 5 MiB (S3's smallest) from 5 MiB on: a 20 MiB file goes up in 4 parts.
SMALL_PARTS = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2)
QUICK_FAILURE = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1, read_timeout=1)


def _s3_store(bucket: str, **options) -> S3Store:
    """A store under a prefix of its own in the session's bucket (tests never see each other)."""
    return S3Store(bucket, f"t-{uuid.uuid4().hex[:10]}", transfer_config=SMALL_PARTS, **options)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "lessons", tmp_path / "videos")
    return _s3_store(request.getfixturevalue("s3_bucket"))


def _file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_upload_list_read_stat_and_delete(store, tmp_path):
    video = os.urandom(300_000)
    store.upload(_file(tmp_path, "v.mp4", video), "videos/abc/lesson_1/out.mp4")
    store.upload(_file(tmp_path, "p.jpg", b"poster"), "videos/abc/lesson_1/out.jpg")
    store.upload(_file(tmp_path, "other.mp4", b"ten"), "videos/abc/lesson_10/out.mp4")
    store.upload(_file(tmp_path, "lesson.json", b"{}"), "lessons/abc/lesson_1/lesson.json")

    info = store.stat("videos/abc/lesson_1/out.mp4")
    assert (info.key, info.size) == ("videos/abc/lesson_1/out.mp4", len(video)) and info.etag
    assert store.exists("lessons/abc/lesson_1/lesson.json")
    assert store.stat("videos/abc/lesson_1/none.mp4") is None
    assert [i.key for i in store.list("videos/abc/lesson_1/")] == [
        "videos/abc/lesson_1/out.jpg",
        "videos/abc/lesson_1/out.mp4",
    ]
    assert [i.key for i in store.list("videos/abc/lesson_1")] == [  # a partial name: lesson_10 too
        "videos/abc/lesson_1/out.jpg",
        "videos/abc/lesson_1/out.mp4",
        "videos/abc/lesson_10/out.mp4",
    ]
    with store.open("videos/abc/lesson_1/out.mp4") as reader:
        assert reader.read() == video
    fetched = store.download("videos/abc/lesson_1/out.mp4", tmp_path / "copy.mp4")
    assert (tmp_path / "copy.mp4").read_bytes() == video and fetched.size == len(video)

    # The same content uploaded again keeps its size; a changed file changes the ETag.
    store.upload(_file(tmp_path, "p2.jpg", b"poster, again"), "videos/abc/lesson_1/out.jpg")
    assert store.stat("videos/abc/lesson_1/out.jpg").etag != store.stat("videos/abc/lesson_10/out.mp4").etag

    assert store.delete("videos/abc/lesson_1/out.jpg") is True
    assert store.delete("videos/abc/lesson_1/out.jpg") is False
    assert store.stat("videos/abc/lesson_1/out.jpg") is None
    assert store.delete_prefix("videos/abc/") == 2
    assert list(store.list("videos/")) == []
    assert [i.key for i in store.list("lessons/")] == ["lessons/abc/lesson_1/lesson.json"]
    with pytest.raises(ObjectMissing):
        store.open("videos/abc/lesson_1/out.mp4")
    with pytest.raises(ObjectMissing):
        store.download("videos/abc/lesson_1/out.mp4", tmp_path / "gone.mp4")
    assert not (tmp_path / "gone.mp4").exists()


BAD_KEYS = [
    "lessons/../etc/passwd",
    "videos/abc/../../x",
    "/etc/passwd",
    "videos//etc/passwd",
    "lessons/abc/./x",
    "videos/a\x00b",
    "videos\\..\\x",
    "elsewhere/x",
    "videos",
    "",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_leave_their_area_are_refused(store, tmp_path, key):
    source = _file(tmp_path, "f.bin", b"data")
    for attempt in (
        lambda: store.upload(source, key),
        lambda: store.stat(key),
        lambda: store.open(key),
        lambda: store.delete(key),
        lambda: store.url(key),
        lambda: store.download(key, tmp_path / "out"),
    ):
        with pytest.raises(KeyRefused):
            attempt()
    assert list(store.list("videos/")) == [] and list(store.list("lessons/")) == []


def test_a_prefix_must_stay_in_an_area_and_deleting_one_must_name_a_folder(store):
    for prefix in ("../", "/", "x/", "videos/../"):
        with pytest.raises(KeyRefused):
            list(store.list(prefix))
    with pytest.raises(KeyRefused):
        store.delete_prefix("videos/")  # never a whole area at once


def test_a_symbolic_link_out_of_the_local_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    store = LocalStore(tmp_path / "lessons", tmp_path / "videos")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "abc").symlink_to(outside)
    with pytest.raises(KeyRefused):
        store.open("videos/abc/secret.txt")


def test_ranged_reads(store, tmp_path):
    data = bytes(range(256)) * 40
    store.upload(_file(tmp_path, "v.mp4", data), "videos/abc/lesson_1/out.mp4")
    with store.open("videos/abc/lesson_1/out.mp4", 100, 199) as reader:
        assert reader.read() == data[100:200]
    with store.open("videos/abc/lesson_1/out.mp4", 10_000) as reader:
        assert reader.read() == data[10_000:]
    with store.open("videos/abc/lesson_1/out.mp4", 10_200, 99_999) as reader:  # end past the end: cut
        assert reader.read() == data[10_200:]
    with pytest.raises(RangeRefused):
        store.open("videos/abc/lesson_1/out.mp4", len(data) + 5)


def test_a_presigned_url_serves_a_byte_range_and_names_the_download(s3_bucket, tmp_path):
    store = _s3_store(s3_bucket)
    data = os.urandom(50_000)
    store.upload(_file(tmp_path, "v.mp4", data), "videos/abc/lesson_1/out.mp4")
    url = store.url("videos/abc/lesson_1/out.mp4", expires=60, filename="Lesson 1.mp4", mimetype="video/mp4")
    request = urllib.request.Request(url, headers={"Range": "bytes=1000-1999"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
        assert response.headers["Content-Type"] == "video/mp4"
        assert 'filename="Lesson 1.mp4"' in response.headers["Content-Disposition"]
        assert response.read() == data[1000:2000]
    shown = store.url("videos/abc/lesson_1/out.mp4", filename="Leçon 1.mp4", attachment=False)
    with urllib.request.urlopen(shown, timeout=10) as response:
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("inline;") and "filename*=UTF-8''Le%C3%A7on%201.mp4" in disposition


def test_the_local_store_gives_paths_not_urls(tmp_path):
    store = LocalStore(tmp_path / "lessons", tmp_path / "videos")
    assert store.url("videos/abc/lesson_1/out.mp4") is None
    assert store.local_path("videos/abc/lesson_1/out.mp4") == (tmp_path / "videos/abc/lesson_1/out.mp4")


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(store, tmp_path):
    data = os.urandom(20 * MIB)
    sent = []
    store.upload(_file(tmp_path, "big.mp4", data), "videos/abc/lesson_1/big.mp4", progress=sent.append)
    assert sum(sent) == len(data)
    info = store.stat("videos/abc/lesson_1/big.mp4")
    assert info.size == len(data)
    if isinstance(store, S3Store):
        assert info.etag.endswith("-4")  # four parts of 5 MiB
    store.download("videos/abc/lesson_1/big.mp4", tmp_path / "back.mp4")
    assert hashlib.sha256((tmp_path / "back.mp4").read_bytes()).digest() == hashlib.sha256(data).digest()
    assert list(store.temporaries()) == []


def test_an_object_is_copied_whole_in_the_store(store, tmp_path):
    """A large object copied (in the bucket, in parts: nothing comes down) comes back whole; a copy
    of nothing is ObjectMissing and leaves nothing at the key."""
    data = os.urandom(12 * MIB)
    store.upload(_file(tmp_path, "clip.mp4", data), "lessons/abc/lesson_1/clips/clip.mp4")
    info = store.copy("lessons/abc/lesson_1/clips/clip.mp4", "lessons/abc/lesson_2/clips/clip.mp4")
    assert info.key == "lessons/abc/lesson_2/clips/clip.mp4" and info.size == len(data)
    store.download(info.key, tmp_path / "back.mp4")
    assert (tmp_path / "back.mp4").read_bytes() == data
    with pytest.raises(ObjectMissing):
        store.copy("lessons/abc/lesson_1/gone.mp4", "lessons/abc/lesson_2/gone.mp4")
    assert store.stat("lessons/abc/lesson_2/gone.mp4") is None and list(store.temporaries()) == []


class Interrupted(Exception):
    pass


def test_a_failed_upload_leaves_the_key_as_it_was(store, tmp_path):
    key = "videos/abc/lesson_1/out.mp4"
    store.upload(_file(tmp_path, "old.mp4", b"the old video"), key)
    sent = []

    def interrupt(count):
        sent.append(count)
        if sum(sent) >= 5 * MIB:
            raise Interrupted

    with pytest.raises(Interrupted):
        store.upload(_file(tmp_path, "new.mp4", os.urandom(12 * MIB)), key, progress=interrupt)
    with store.open(key) as reader:
        assert reader.read() == b"the old video"  # never half-replaced
    with pytest.raises(Interrupted):
        store.upload(
            _file(tmp_path, "new.mp4", os.urandom(12 * MIB)), "videos/abc/lesson_2/out.mp4", interrupt
        )
    assert store.stat("videos/abc/lesson_2/o.mp4") is None
    assert list(store.temporaries()) == []  # cleaned up on the way out


KILLED_UPLOAD = """
import json, sys, time
from pathlib import Path
from boto3.s3.transfer import TransferConfig
from webapp.storage import LocalStore
from webapp.storage.s3 import S3Store
spec = json.loads(sys.argv[1])
if spec["kind"] == "local":
    store = LocalStore(spec["lessons"], spec["videos"])
else:
    parts = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=1)
    store = S3Store(spec["bucket"], spec["prefix"], transfer_config=parts)
progress = Path(spec["progress"])
def slowly(count):
    progress.write_text("sent")
    time.sleep(0.05)
store.upload(Path(spec["source"]), spec["key"], progress=slowly)
"""


def test_a_killed_upload_leaves_nothing_at_the_key_and_the_sweeper_clears_its_leftovers(store, tmp_path):
    source = _file(tmp_path, "big.mp4", os.urandom(20 * MIB))
    spec = {"source": str(source), "key": "videos/abc/lesson_1/out.mp4", "progress": str(tmp_path / "p")}
    if isinstance(store, LocalStore):
        spec |= {
            "kind": "local",
            "lessons": str(store.roots["lessons"]),
            "videos": str(store.roots["videos"]),
        }
    else:
        spec |= {"kind": "s3", "bucket": store.bucket, "prefix": store.prefix}
    kill_when_started(KILLED_UPLOAD, spec, tmp_path / "p", "the upload")
    assert store.stat("videos/abc/lesson_1/out.mp4") is None
    assert store.sweep_temporaries(older_than=3600) == 0  # a fresh temporary may still be in use
    store.sweep_temporaries(older_than=0)
    assert list(store.temporaries()) == []
    assert list(store.list("videos/")) == []
    if isinstance(store, S3Store):
        unfinished = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
        assert unfinished.get("Uploads", []) == []


def kill_when_started(script: str, spec: dict, started: Path, what: str) -> None:
    """Run `script` in a process of its own and SIGKILL it once it has written `started`."""
    process = subprocess.Popen([sys.executable, "-c", script, json.dumps(spec)], cwd=ROOT)
    try:
        wait_for(lambda: started.exists() or process.poll() is not None, 30, f"{what} to start")
        assert process.poll() is None, f"{what} ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)


KILLED_COPY = """
import json, sys, time
from pathlib import Path
from boto3.s3.transfer import TransferConfig
from webapp.storage.s3 import S3Store
spec = json.loads(sys.argv[1])
parts = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=1)
store = S3Store(spec["bucket"], spec["prefix"], transfer_config=parts)
def slowly(**_):  # each part copied to the key: say so, then take a while
    Path(spec["progress"]).write_text("copying")
    time.sleep(0.5)
store.client.meta.events.register("after-call.s3.UploadPartCopy", slowly)
store.upload(Path(spec["source"]), spec["key"])
"""


def test_a_process_killed_while_copying_to_the_key_leaves_no_unfinished_upload_after_the_sweep(
    s3_bucket, tmp_path
):
    """A large upload is made visible by a copy in parts to its key: killed half way through
    that copy, it leaves nothing at the key but an unfinished multipart upload *of the key*
    (its parts take room in the store, unseen): the sweeper aborts it once it is stale."""
    store = _s3_store(s3_bucket)
    source = _file(tmp_path, "big.mp4", os.urandom(20 * MIB))
    key = "videos/abc/lesson_1/out.mp4"
    spec = {"source": str(source), "key": key, "progress": str(tmp_path / "p")}
    spec |= {"bucket": store.bucket, "prefix": store.prefix}
    kill_when_started(KILLED_COPY, spec, tmp_path / "p", "the copy")
    assert store.stat(key) is None

    def unfinished():
        found = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
        return [upload["Key"][len(store.prefix) :] for upload in found.get("Uploads", [])]

    assert unfinished() == [key]
    assert store.sweep_temporaries(older_than=3600) == 0  # it may still be going on
    store.sweep_temporaries(older_than=0)
    assert unfinished() == []
    assert list(store.temporaries()) == []
    assert list(store.list("videos/")) == []


def test_a_leftover_temporary_is_listed_under_the_known_prefix(store, tmp_path):
    """What the sweeper sees: a temporary left by a process that died between upload and rename."""
    leftover = _file(tmp_path, "t.bin", b"half")
    if isinstance(store, LocalStore):
        (store.roots["videos"] / ".partial").mkdir(parents=True)
        (store.roots["videos"] / ".partial" / "dead").write_bytes(b"half")
    else:
        store.client.upload_file(str(leftover), store.bucket, store.prefix + "videos/.partial/dead")
    assert [i.key for i in store.temporaries()] == ["videos/.partial/dead"]
    assert store.sweep_temporaries(older_than=3600) == 0
    assert store.sweep_temporaries(older_than=0) == 1
    assert list(store.temporaries()) == []


def test_the_hourly_sweep_never_takes_an_upload_a_render_may_still_be_sending(config):
    """A video goes up inside its render, and RQ stops a render at its hard limit (for the
    longest lesson allowed, LESSON_MAX_SECONDS): a temporary is swept only once it is older than
    that limit (and an hour, and at least a day), when nothing can still be sending it."""
    from webapp import create_app, tasks

    partial = Path(config["VIDEOS_ROOT"]) / ".partial"
    partial.mkdir(parents=True)
    (partial / "upload").write_bytes(b"half")
    hours_ago = time.time() - 30 * 3600
    os.utime(partial / "upload", (hours_ago, hours_ago))
    # Lessons of up to 8 h: a render may run 32 h, so a 30-hour-old upload may be live.
    with create_app({**config, "LESSON_MAX_SECONDS": 8 * 3600}).app_context():
        assert tasks.sweep_uploads() == 0
    # The default, 4 h: a render is stopped within 16 h 5 min; 30 hours old, the upload is dead.
    with create_app(config).app_context():
        assert tasks.sweep_uploads() == 1
    assert list(partial.iterdir()) == []


def test_an_unreachable_store_is_unavailable_not_a_raw_error(s3_server, monkeypatch, tmp_path):
    from .seaweed import free_ports

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_ports(1)[0]}")
    store = S3Store("lvt-test", client_config=QUICK_FAILURE)
    source = _file(tmp_path, "f.bin", b"data")
    for attempt in (
        lambda: store.stat("videos/abc/lesson_1/out.mp4"),
        lambda: list(store.list("videos/")),
        lambda: store.upload(source, "videos/abc/lesson_1/out.mp4"),
        lambda: store.open("videos/abc/lesson_1/out.mp4"),
        lambda: store.delete_prefix("videos/abc/"),
    ):
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            attempt()


def test_a_paused_store_is_unavailable(s3_server, s3_bucket):
    store = _s3_store(s3_bucket, client_config=QUICK_FAILURE)
    s3_server.pause()
    try:
        with pytest.raises(StoreUnavailable):
            store.stat("videos/abc/lesson_1/out.mp4")
    finally:
        s3_server.resume()
    wait_for(lambda: store.stat("videos/abc/lesson_1/out.mp4") is None, 10, "the store to answer again")


class _Throttling(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request with 503 SlowDown, as a throttled one does."""

    def _slow_down(self):
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _slow_down

    def log_message(self, *args):
        pass


def test_a_throttling_store_is_unavailable(monkeypatch, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
        store = S3Store("lvt-test", client_config=QUICK_FAILURE)
        with pytest.raises(StoreUnavailable, match="SlowDown"):
            list(store.list("videos/"))
        with pytest.raises(StoreUnavailable, match="HTTP 503"):
            store.upload(_file(tmp_path, "f.bin", b"data"), "videos/abc/lesson_1/out.mp4")
    finally:
        server.shutdown()
        server.server_close()


def test_storage_url_chooses_the_backend(s3_server, tmp_path):
    default = open_store("", tmp_path / "l", tmp_path / "v")
    assert isinstance(default, LocalStore) and default.roots == {
        "lessons": tmp_path / "l",
        "videos": tmp_path / "v",
    }
    named = open_store(f"file://{tmp_path}/media", tmp_path / "l", tmp_path / "v")
    assert named.roots == {"lessons": tmp_path / "media/lessons", "videos": tmp_path / "media/videos"}
    remote = open_store("s3://lvt-test/school/media", tmp_path / "l", tmp_path / "v")
    assert isinstance(remote, S3Store) and (remote.bucket, remote.prefix) == ("lvt-test", "school/media/")
    assert remote.endpoint == s3_server.endpoint  # from AWS_ENDPOINT_URL, as for every AWS tool
    for bad in ("ftp://host/x", "file://host/x", "s3:///nobucket"):
        with pytest.raises(ValueError):
            open_store(bad, tmp_path, tmp_path)


def test_a_file_that_changes_while_it_is_stored_is_not_kept(store, tmp_path):
    """The checksum is taken before the upload and checked after: bytes that differ (here the
    file's last part rewritten after the first part went up) never reach the key."""
    source = _file(tmp_path, "v.mp4", os.urandom(20 * MIB))

    def rewrite_the_end(_count):
        with open(source, "r+b") as fh:
            fh.seek(-1000, os.SEEK_END)
            fh.write(os.urandom(1000))

    with pytest.raises(StoreError, match=r"(changed|differ)"):
        store.upload(source, "videos/abc/lesson_1/out.mp4", progress=rewrite_the_end)
    assert store.stat("videos/abc/lesson_1/out.mp4") is None
    assert list(store.temporaries()) == []


def test_the_app_keeps_media_on_the_local_disk_by_default(app):
    store = app.extensions["store"]
    assert isinstance(store, LocalStore)
    assert store.roots == {
        "lessons": Path(app.config["LESSONS_ROOT"]),
        "videos": Path(app.config["VIDEOS_ROOT"]),
    }


def test_a_file_storage_url_names_both_folders(config, tmp_path):
    from webapp import create_app

    app = create_app({**config, "STORAGE_URL": f"file://{tmp_path}/media"})
    assert app.config["LESSONS_ROOT"] == str(tmp_path / "media/lessons")
    assert app.extensions["store"].roots["videos"] == tmp_path / "media/videos"


def test_the_app_starts_with_an_s3_storage_url(config, s3_server):
    from webapp import create_app
    from webapp.storage.s3 import S3Store

    app = create_app({**config, "STORAGE_URL": "s3://bucket/media"})
    store = app.extensions["store"]
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == ("bucket", "media/")
    # Nothing is asked of the store at start; the player's origin is the endpoint's.
    assert app.extensions["store_origin"] == s3_server.endpoint
