"""Push updates: the job's status documents as server-sent events, read by a real HTTP client
from a live server, fed by commits in this process and in the worker's."""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest

from webapp.extensions import db
from webapp.services import lifecycle
from webapp.services import progress as reports

from .helpers import bearer


class EventStream:
    """A text/event-stream read line by line, as a browser's EventSource would."""

    def __init__(self, base: str, path: str, headers: dict, timeout: float = 10):
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()

    def next(self) -> dict:
        """The next event or comment: {"comment": …} or {"event", "id", "data"}."""
        fields: dict = {}
        while True:
            line = self.response.fp.readline().decode()
            if line == "":
                return {"closed": True}
            line = line.rstrip("\n")
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                return {"comment": line[1:].strip()}
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value

    def next_event(self, limit: int = 20) -> dict:
        for _ in range(limit):
            item = self.next()
            if "comment" not in item:
                return item
        raise AssertionError("no event")

    def close(self):
        self.response.close()  # its file holds the socket open after the connection's close
        self.conn.close()


@pytest.fixture
def member(app, factory):
    app.config.update(EVENTS_HEARTBEAT_SECONDS=0.3)
    user = factory.user("member@example.com", courses=["Course A"])
    return bearer(factory.token(user.email))


@pytest.fixture
def streams():
    opened = []

    def open_stream(*args, **kwargs) -> EventStream:
        opened.append(EventStream(*args, **kwargs))
        return opened[-1]

    yield open_stream
    for stream in opened:
        stream.close()


def test_status_changes_are_pushed_with_increasing_ids(app, client, factory, member, live_server, streams):
    job = factory.job("Course A", lessons=2)
    url = f"/video-transform/{job.id}/events"
    stream = streams(live_server, url, member)
    assert stream.response.status == 200
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    first = stream.next_event()
    status = client.get(f"/video-transform/{job.id}/video-generation-status", headers=member).json
    assert first["event"] == "status" and first["data"] == status

    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    render_id = client.post("/video-transform/generate-video", json=body, headers=member).json["renderId"]
    queued = stream.next_event()
    assert int(queued["id"]) > int(first["id"])
    assert queued["data"]["videoGenerationStatus"] == "generating"
    assert [r["state"] for r in queued["data"]["activeRenders"]] == ["queued"]

    with app.app_context():  # what a worker writes: the start, then progress
        lifecycle.begin(f"render-{render_id}")
        reports.record_progress(uuid.UUID(render_id), 3, 10)
        db.session.remove()
    rendering = stream.next_event()
    progress = stream.next_event()
    assert int(queued["id"]) < int(rendering["id"]) < int(progress["id"])
    assert rendering["data"]["activeRenders"][0]["state"] == "rendering"
    assert progress["data"]["activeRenders"][0]["framesDone"] == 3
    assert (
        progress["data"]
        == client.get(f"/video-transform/{job.id}/video-generation-status", headers=member).json
    )


def test_heartbeats_and_resuming_with_last_event_id(app, client, factory, member, live_server, streams):
    job = factory.job("Course A", lessons=1)
    url = f"/video-transform/{job.id}/events"
    current = streams(live_server, url, member).next_event()
    caught_up = streams(live_server, url, {**member, "Last-Event-ID": current["id"]})
    assert caught_up.next() == {"comment": "heartbeat"}  # nothing newer: no event, a heartbeat
    behind = streams(live_server, url, {**member, "Last-Event-ID": "0"} if current["id"] != "0" else member)
    resumed = behind.next_event()
    assert resumed["id"] == current["id"] and resumed["data"] == current["data"]


def test_the_stream_ends_and_the_client_reconnects(app, factory, member, live_server, streams):
    app.config["EVENTS_MAX_SECONDS"] = 0.5
    job = factory.job("Course A", lessons=1)
    stream = streams(live_server, f"/video-transform/{job.id}/events", member)
    items = [stream.next() for _ in range(10)]
    assert {"closed": True} in items


def test_events_are_for_the_jobs_course_only(client, factory, member):
    theirs = factory.job("Course B", lessons=1)
    assert client.get(f"/video-transform/{theirs.id}/events", headers=member).status_code == 404
    assert client.get(f"/video-transform/{theirs.id}/events").status_code == 401


@pytest.mark.parametrize("withdrawn", ["token revoked", "removed from the course", "job moved"])
def test_an_open_stream_ends_when_access_is_withdrawn(app, factory, live_server, streams, withdrawn):
    """Access is checked again every EVENTS_RECHECK_SECONDS while the stream is open: a revoked
    token, a removed membership or a job moved to another course ends it (no more events)."""
    from webapp.models import ApiToken, Course, User, VideoJob
    from webapp.services import courses, jobs, tokens

    app.config.update(EVENTS_HEARTBEAT_SECONDS=0.2, EVENTS_RECHECK_SECONDS=0.2)
    user = factory.user("leaver@example.com", courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=1)
    stream = streams(live_server, f"/video-transform/{job.id}/events", headers)
    assert stream.next_event()["event"] == "status"
    assert stream.next() == {"comment": "heartbeat"}
    with app.app_context():
        who = db.session.get(User, user.id)
        if withdrawn == "token revoked":
            token_id = db.session.scalars(db.select(ApiToken.id).where(ApiToken.user_id == who.id)).one()
            assert tokens.revoke_api_token(who, token_id)
        elif withdrawn == "removed from the course":
            assert courses.remove_member(None, db.session.scalars(db.select(Course)).one(), who)
        else:
            jobs.move_job(None, db.session.get(VideoJob, uuid.UUID(job.id)), courses.create_course(None, "B"))
    items = [stream.next() for _ in range(20)]
    assert {"closed": True} in items, items
    assert all("event" not in item for item in items)


def test_a_stream_opened_by_a_logged_in_browser_survives_its_checks(
    app, client, auth, factory, live_server, streams
):
    app.config.update(EVENTS_HEARTBEAT_SECONDS=0.2, EVENTS_RECHECK_SECONDS=0.1)
    user = factory.user("stays@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    auth.login(user.email)
    cookie = client.get_cookie("session")
    stream = streams(live_server, f"/video-transform/{job.id}/events", {"Cookie": f"session={cookie.value}"})
    assert stream.next_event()["event"] == "status"
    assert [stream.next() for _ in range(8)] == [{"comment": "heartbeat"}] * 8  # ~16 checks passed


def test_a_user_holds_a_bounded_number_of_streams(app, factory, member, live_server, streams):
    """Each open stream holds a connection of the web server: one user opening thousands would
    take them all. At EVENTS_MAX_PER_USER the next is 429 (the page polls instead); a closed one
    frees its place; another user is not counted with them."""
    import time

    app.config["EVENTS_MAX_PER_USER"] = 2
    job = factory.job("Course A", lessons=1)
    url = f"/video-transform/{job.id}/events"
    first, second = streams(live_server, url, member), streams(live_server, url, member)
    assert first.next_event()["event"] == second.next_event()["event"] == "status"
    third = streams(live_server, url, member)
    assert third.response.status == 429 and int(third.response.getheader("Retry-After")) > 0
    assert "at most 2 open event streams" in json.loads(third.response.read())["message"]
    other = bearer(factory.token(factory.user("other@example.com", courses=["Course A"]).email))
    assert streams(live_server, url, other).next_event()["event"] == "status"

    first.close()  # the server notices at its next heartbeat (0.3 s here) and gives the place back
    deadline = time.monotonic() + 10
    while True:
        again = streams(live_server, url, member)
        if again.response.status == 200:
            break
        assert time.monotonic() < deadline, "a closed stream kept its place"
        time.sleep(0.3)
    assert again.next_event()["event"] == "status"


def test_a_stream_kept_busy_by_a_render_keeps_its_place(
    app, client, factory, member, live_server, streams, monkeypatch
):
    """A stream refreshed its place only when it sent a heartbeat, and a render's progress (an
    event a second) leaves no quiet time for one: its place lapsed while it stayed open, and the
    user could open as many again every minute (an attacker's review did, to 20 of 10)."""
    import time

    from webapp.services import admission

    monkeypatch.setattr(admission, "STREAM_SLOT_MIN_IDLE", 2)
    monkeypatch.setattr(admission, "SLOT_TOUCH_EVERY", 0.2)
    app.config.update(EVENTS_MAX_PER_USER=1, EVENTS_HEARTBEAT_SECONDS=0.5)  # longer than between events
    job = factory.job("Course A", lessons=1)
    url = f"/video-transform/{job.id}/events"
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    render_id = uuid.UUID(
        client.post("/video-transform/generate-video", json=body, headers=member).json["renderId"]
    )
    busy = streams(live_server, url, member)
    busy.next_event()
    with app.app_context():
        lifecycle.begin(f"render-{render_id}")
        for frame in range(1, 15):  # 4 s of progress, an event every 0.3 s
            reports.record_progress(render_id, frame, 100)
            busy.next_event()
            time.sleep(0.3)
        db.session.remove()
    assert streams(live_server, url, member).response.status == 429
