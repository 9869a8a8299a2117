"""Who may send a lesson package at all, decided before the server reads (and spools to disk)
a byte of it: the job's course scope, how many uploads one user has in flight, and the disk
space left. Real sockets against a real server: an upload whose body is still on its way must
be answered (or held) as a browser or an integration would see it."""

from __future__ import annotations

import io
import shutil
import socket
import time
from urllib.parse import urlsplit

import pytest

from .helpers import bearer, csrf_token, wait_for
from .test_uploads import lesson_files, package, upload

BOUNDARY = "lvt-test-boundary"
DECLARED = 64 * 1024 * 1024  # what each slow upload says it will send (it sends a little)


def _request(base: str, path: str, headers: dict[str, str], length: int) -> bytes:
    host = urlsplit(base).netloc
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    lines.append(f"Content-Type: multipart/form-data; boundary={BOUNDARY}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _part_head(name: str = "package", filename: str = "lessons.zip") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()


def start_upload(base: str, path: str, headers: dict[str, str]) -> socket.socket:
    """An upload that has sent its headers and the first 64 KiB of a 64 MiB body, and waits."""
    address = urlsplit(base)
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    sock.sendall(_request(base, path, headers, DECLARED) + _part_head() + b"\0" * 65536)
    return sock


def whole_upload(base: str, path: str, headers: dict[str, str], data: bytes, fields: dict | None = None):
    """A complete multipart upload over a raw socket; the response's status code."""
    body = b""
    for name, value in (fields or {}).items():
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += _part_head() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(_request(base, path, {**headers, "Connection": "close"}, len(body)) + body)
        return answer(sock, 30)[0]


def answer(sock: socket.socket, timeout: float) -> tuple[int | None, bytes]:
    """The status code and the head of the response, or (None, b"") if the server says nothing
    within `timeout` seconds (it is still reading the body)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        return None, b""
    if not received:
        return None, b""
    return int(received.split(b" ", 2)[1]), received


def session_headers(client, page: str) -> dict[str, str]:
    """The headers a logged-in browser sends: its session cookie (and htmx's marker)."""
    csrf_token(client, page)  # the session now holds a CSRF token, as after opening the page
    return {"Cookie": f"session={client.get_cookie('session').value}", "HX-Request": "true"}


@pytest.fixture
def people(factory):
    alice = factory.user("alice@example.com", courses=["Course A"])
    carol = factory.user("carol@example.com", courses=["Course A"])
    return {
        "alice": bearer(factory.token(alice.email)),
        "carol": bearer(factory.token(carol.email)),
    }


def test_another_courses_job_is_refused_before_the_package_is_read(app, client, auth, factory, live_server):
    """Staff of another course get their 404 at once: the server does not first take in (and
    write to disk) the gigabytes they say they are sending."""
    factory.user("bob@example.com", courses=["Course B"])
    bob = bearer(factory.token("bob@example.com"))
    mine = factory.job("Course B", lessons=0)
    foreign = factory.job("Course A", lessons=0)

    api = start_upload(live_server, f"/api/jobs/{foreign.id}/lessons", bob)
    status, head = answer(api, 5)
    api.close()
    assert status == 404, "the API read the body of an upload it was going to refuse"
    assert b"application/json" in head

    auth.login("bob@example.com")
    browser = session_headers(client, f"/jobs/{mine.id}")
    page = start_upload(live_server, f"/jobs/{foreign.id}/lessons", browser)
    status, _ = answer(page, 5)
    page.close()
    assert status == 404, "the job page's upload read the body of an upload it was going to refuse"

    # Their own course's job is taken in as before (it waits for the rest of the body).
    own = start_upload(live_server, f"/api/jobs/{mine.id}/lessons", bob)
    assert answer(own, 1.5)[0] is None
    own.close()


def test_a_stranger_is_refused_before_the_package_is_read(factory, live_server):
    job = factory.job("Course A", lessons=0)
    sock = start_upload(live_server, f"/api/jobs/{job.id}/lessons", {})
    status, _ = answer(sock, 5)
    sock.close()
    assert status == 401


def test_one_user_has_at_most_two_uploads_in_flight(app, factory, people, live_server, tmp_path):
    app.config["UPLOAD_MAX_CONCURRENT"] = 2
    job = factory.job("Course A", lessons=0)
    path = f"/api/jobs/{job.id}/lessons"
    first = start_upload(live_server, path, people["alice"])
    second = start_upload(live_server, path, people["alice"])
    assert answer(first, 1)[0] is None and answer(second, 0.2)[0] is None  # both being taken in

    third = start_upload(live_server, path, people["alice"])
    status, head = answer(third, 5)
    third.close()
    assert status == 429
    assert b"Retry-After:" in head
    small = package(lesson_1=lesson_files(tmp_path, "Small"))
    assert whole_upload(live_server, path, people["alice"], small) == 429

    # Another member of the course is not held up by Alice's uploads.
    assert whole_upload(live_server, path, people["carol"], small) == 201

    # When one of hers ends (here: she gives up on it), she may start another.
    first.close()
    wait_for(
        lambda: whole_upload(live_server, path, people["alice"], small) == 201,
        10,
        "an upload slot given back after the client went away",
    )
    second.close()


def test_the_cap_counts_uploads_from_the_job_page_too(app, client, auth, factory, live_server, tmp_path):
    app.config["UPLOAD_MAX_CONCURRENT"] = 1
    user = factory.user("dave@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=0)
    auth.login(user.email)
    browser = session_headers(client, f"/jobs/{job.id}")
    waiting = start_upload(live_server, f"/jobs/{job.id}/lessons", browser)
    assert answer(waiting, 1)[0] is None
    refused = start_upload(live_server, f"/jobs/{job.id}/lessons", browser)
    status, _ = answer(refused, 5)
    refused.close()
    waiting.close()
    assert status == 429


def test_an_upload_the_disk_cannot_hold_is_refused(app, client, auth, factory, people, tmp_path):
    app.config["UPLOAD_DISK_RESERVE_BYTES"] = 1 << 60  # more free space than any disk has
    job = factory.job("Course A", lessons=0)
    data = package(lesson_1=lesson_files(tmp_path, "Too big for the disk"))
    response = upload(client, job.id, data, people["alice"])
    assert response.status_code == 507
    assert "enough disk space for this upload" in response.json["message"]
    assert "Retry-After" in response.headers

    user = factory.user("erin@example.com", courses=["Course A"])
    auth.login(user.email)
    token = csrf_token(client, f"/jobs/{job.id}")
    page = client.post(
        f"/jobs/{job.id}/lessons",
        data={"package": (io.BytesIO(data), "p.zip"), "csrf_token": token},
        content_type="multipart/form-data",
        headers={"HX-Request": "true"},
    )
    assert page.status_code == 507 and "enough disk space for this upload" in page.get_data(as_text=True)

    app.config["UPLOAD_DISK_RESERVE_BYTES"] = 0
    again = upload(client, job.id, data, people["alice"])
    assert again.status_code == 201


def test_slots_are_given_back_after_each_upload(app, client, factory, people, tmp_path):
    """Sequential uploads never run into the cap (each gives its slot back, refused or not)."""
    app.config["UPLOAD_MAX_CONCURRENT"] = 1
    job = factory.job("Course A", lessons=0)
    good = package(lesson_1=lesson_files(tmp_path, "Again"))
    for data, expected in ((good, 201), (b"not a zip", 400), (good, 201), (good, 201)):
        response = upload(client, job.id, data, people["alice"])
        assert response.status_code == expected, response.get_data(as_text=True)


def test_without_redis_uploads_go_on_uncounted(outage_app, own_redis, factory, tmp_path):
    from webapp import embedded_redis

    folder, _ = own_redis
    factory.user("fay@example.com", courses=["Course A"])
    headers = bearer(factory.token("fay@example.com"))
    job = factory.job("Course A", lessons=0)
    embedded_redis.stop(folder)
    response = outage_app.test_client().post(
        f"/api/jobs/{job.id}/lessons",
        data={"package": (io.BytesIO(package(lesson_1=lesson_files(tmp_path, "No Redis"))), "l.zip")},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_a_package_that_would_unpack_past_the_reserve_is_507(app, client, factory, people, tmp_path):
    """The admission check counts the package; what it unpacks to is counted as soon as its
    archive's directory is read, before a byte is unpacked."""
    from pathlib import Path

    from .test_uploads import _lie_about_size, make_zip, snapshot

    app.config.update(UPLOAD_MAX_RATIO=10**9, UPLOAD_MAX_UNCOMPRESSED_BYTES=2**40)
    job = factory.job("Course A", lessons=0)
    root = Path(app.config["LESSONS_ROOT"])
    before = snapshot(root)
    files = {f"lesson_1/{k}": v for k, v in lesson_files(tmp_path, "Unpacks big").items()}
    data = _lie_about_size(make_zip({**files, "lesson_1/big.bin": b"x"}), b"lesson_1/big.bin", 2**30)
    free = shutil.disk_usage(root).free
    app.config["UPLOAD_DISK_RESERVE_BYTES"] = free - 200 * 2**20  # room for the package, not 1 GiB
    response = upload(client, job.id, data, people["alice"])
    assert response.status_code == 507, response.get_data(as_text=True)
    assert "enough disk space" in response.json["message"] and response.headers["Retry-After"] == "300"
    assert snapshot(root) == before


def test_a_slot_lapses_when_its_upload_goes_quiet_and_is_kept_while_it_sends(
    app, factory, people, live_server, tmp_path, monkeypatch
):
    """A server that dies mid-upload never gives its slot back: the slot then counts only until
    its upload has been quiet for SLOT_IDLE seconds (here 2), while one still sending keeps it."""
    from webapp.services import admission

    monkeypatch.setattr(admission, "SLOT_IDLE", 2)
    monkeypatch.setattr(admission, "SLOT_TOUCH_EVERY", 0.2)
    app.config["UPLOAD_MAX_CONCURRENT"] = 1
    job = factory.job("Course A", lessons=0)
    path = f"/api/jobs/{job.id}/lessons"
    small = package(lesson_1=lesson_files(tmp_path, "Small"))

    sending = start_upload(live_server, path, people["alice"])
    for _ in range(8):  # 4 s of a slow but steady upload
        time.sleep(0.5)
        sending.sendall(b"\0" * 65536)
    assert whole_upload(live_server, path, people["alice"], small) == 429
    sending.close()
    wait_for(lambda: whole_upload(live_server, path, people["alice"], small) == 201, 10, "the slot back")

    quiet = start_upload(live_server, path, people["alice"])  # sends a little, then nothing
    assert answer(quiet, 0.5)[0] is None
    assert whole_upload(live_server, path, people["alice"], small) == 429
    time.sleep(2.5)
    assert whole_upload(live_server, path, people["alice"], small) == 201  # the quiet one lapsed
    quiet.close()


def test_only_a_post_goes_through_admission(app, client, factory, people):
    job = factory.job("Course A", lessons=0)
    response = client.options(f"/api/jobs/{job.id}/lessons", headers=people["alice"])
    assert response.status_code == 200 and "POST" in response.headers["Allow"]


def test_form_limits_are_not_called_the_package_cap(app, client, factory, people, tmp_path):
    job = factory.job("Course A", lessons=0)
    data = package(lesson_1=lesson_files(tmp_path, "Fields"))
    fields = {f"x{n}": "y" for n in range(1100)}  # more parts than a form may have
    response = client.post(
        f"/api/jobs/{job.id}/lessons",
        data={"package": (io.BytesIO(data), "lessons.zip"), **fields},
        content_type="multipart/form-data",
        headers=people["alice"],
    )
    assert response.status_code == 413
    assert response.json["message"] == "A form field is too large, or the form has too many parts."


def test_package_downloads_are_counted_like_uploads(app, factory, people, monkeypatch):
    """A package download is made whole on the lessons' disk (the video's shared files included)
    before it is sent: one member could run any number at once. At most UPLOAD_MAX_CONCURRENT
    per user (429 beyond; others go on), none when the disk is short (507), each slot given
    back once its answer is sent."""
    import threading

    from webapp.services import uploads

    app.config["UPLOAD_MAX_CONCURRENT"] = 2
    job = factory.job("Course A", lessons=1)
    path = f"/api/jobs/{job.id}/lessons/package"
    release, inside = threading.Event(), threading.Semaphore(0)
    real = uploads.write_package

    def held(out, folders, video_dir=None):
        real(out, folders, video_dir)
        inside.release()
        assert release.wait(20)

    monkeypatch.setattr(uploads, "write_package", held)
    codes = []

    def download(who=people["alice"]):
        answer = app.test_client().get(path, headers=who)
        answer.get_data()
        answer.close()  # as a server does once the body is sent
        codes.append(answer.status_code)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert inside.acquire(timeout=20)  # both being made
    third = app.test_client().get(path, headers=people["alice"])
    assert third.status_code == 429 and "Retry-After" in third.headers
    assert "lesson packages" in third.json["message"]
    carols = threading.Thread(target=download, args=(people["carol"],))
    carols.start()  # another member is not held up
    assert inside.acquire(timeout=20)
    release.set()
    for thread in [*threads, carols]:
        thread.join(timeout=20)
    assert codes == [200, 200, 200]
    assert app.test_client().get(path, headers=people["alice"]).status_code == 200  # given back

    app.config["UPLOAD_DISK_RESERVE_BYTES"] = 1 << 60
    short = app.test_client().get(path, headers=people["alice"])
    assert short.status_code == 507 and "Retry-After" in short.headers
