"""Operators: /metrics in Prometheus' format, request ids, and key=value log lines."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .helpers import bearer

ELSEWHERE = {"REMOTE_ADDR": "10.1.2.3"}


def samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def member(factory):
    user = factory.user("member@example.com", courses=["Course A"])
    return bearer(factory.token(user.email))


def test_metrics_count_renders_queues_workers_and_status_answers(app, client, factory, member, work):
    job = factory.job("Course A", lessons=2)
    for lesson in job.lessons:
        body = {"jobId": job.id, "lessonPath": lesson}
        assert client.post("/video-transform/generate-video", json=body, headers=member).status_code == 202
    before = samples(client.get("/metrics").get_data(as_text=True))
    assert before[("lvt_queue_depth", (("queue", "renders"),))] == 2
    assert before[("lvt_queue_oldest_seconds", (("queue", "renders"),))] >= 0
    work()
    status = f"/video-transform/{job.id}/video-generation-status"
    client.get(status, headers=member)
    client.get(status, headers={**member, "HX-Request": "true"})
    client.get(
        "/video-transform/00000000-0000-0000-0000-000000000000/video-generation-status", headers=member
    )
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = samples(response.get_data(as_text=True))
    assert after[("lvt_renders_total", (("state", "completed"),))] == 2
    assert after[("lvt_renders_total", (("state", "failed"),))] == 0
    assert after[("lvt_render_seconds_count", ())] == 2
    assert after[("lvt_render_seconds_sum", ())] > 0
    assert after[("lvt_render_fps_count", ())] == 2
    assert after[("lvt_queue_depth", (("queue", "renders"),))] == 0
    assert after[("lvt_workers", ())] == 0  # the in-process worker has gone
    assert after[("lvt_status_requests_total", (("code", "200"), ("face", "json")))] == 1
    assert after[("lvt_status_requests_total", (("code", "200"), ("face", "html")))] == 1
    assert after[("lvt_status_requests_total", (("code", "404"), ("face", "json")))] == 1


def test_metrics_are_for_allowed_addresses_and_admins(app, client, factory, member):
    assert client.get("/metrics").status_code == 200  # loopback
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 401
    assert client.get("/metrics", environ_base=ELSEWHERE, headers=member).status_code == 403
    admin = factory.user("root@example.com", role="admin")
    assert (
        client.get("/metrics", environ_base=ELSEWHERE, headers=bearer(factory.token(admin.email))).status_code
        == 200
    )
    app.config["METRICS_ALLOW"] = "10.0.0.0/8, not-an-address"
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 200
    assert client.get("/metrics").status_code == 401  # loopback is no longer listed


def test_request_ids_are_echoed_or_made(client):
    made = client.get("/health").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/health", headers={"X-Request-ID": "lms-42.a"}).headers["X-Request-ID"] == "lms-42.a"
    hostile = client.get("/health", headers={"X-Request-ID": "x\u00e9 <script>"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", hostile)


def test_one_log_line_per_request_without_secrets(client, factory, member, caplog):
    job = factory.job("Course A", lessons=1)
    with caplog.at_level(logging.INFO, logger="webapp.requests"):
        response = client.get(f"/api/jobs/{job.id}?q=top-secret", headers={**member, "X-Request-ID": "abc-1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "webapp.requests"]
    assert len(lines) == 1
    line = lines[0]
    assert response.status_code == 200
    assert f"path=/api/jobs/{job.id}" in line and "status=200" in line and "request_id=abc-1" in line
    assert f"job_id={job.id}" in line and re.search(r"duration_ms=\d+\.\d", line) and "user_id=" in line
    assert "top-secret" not in line and member["Authorization"].split()[1] not in line


def test_render_state_changes_are_logged_with_ids(app, client, factory, member, work, caplog):
    job = factory.job("Course A", lessons=1)
    with caplog.at_level(logging.INFO, logger="webapp.services"):
        body = {"jobId": job.id, "lessonPath": job.lessons[0]}
        render_id = client.post("/video-transform/generate-video", json=body, headers=member).json["renderId"]
        work()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("render state=")]
    states = [re.search(r"state=(\w+)", line).group(1) for line in lines]
    assert states == ["queued", "rendering", "completed"]
    for line in lines:
        assert (
            f"render_id={render_id}" in line
            and f"job_id={job.id}" in line
            and f"lesson={job.lessons[0]}" in line
        )


def test_a_failed_render_logs_why(app, client, factory, member, caplog):
    """The log said only "state=failed … kind=transient": the reason (an unwritable videos folder)
    was on the job page alone, where an operator does not look. A fault of the machine or the
    storage is a warning; a lesson's own mistake stays information (its staff see it)."""
    from webapp.services import lifecycle

    job = factory.job("Course A", lessons=2)
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    first = client.post("/video-transform/generate-video", json=body, headers=member).json["renderId"]
    body["lessonPath"] = job.lessons[1]
    second = client.post("/video-transform/generate-video", json=body, headers=member).json["renderId"]
    with app.app_context(), caplog.at_level(logging.INFO, logger="webapp.services"):
        lifecycle.fail(uuid.UUID(first), "transient", "cannot create the output folder: Not a directory")
        lifecycle.fail(uuid.UUID(second), "manifest", "segments[1].audio: file not found: 'a.wav'\nnext line")
    failed = [r for r in caplog.records if r.getMessage().startswith("render state=failed")]
    assert [r.levelname for r in failed] == ["WARNING", "INFO"]
    assert failed[0].getMessage().endswith("message='cannot create the output folder: Not a directory'")
    assert (
        failed[1].getMessage().endswith("message=\"segments[1].audio: file not found: 'a.wav'\\nnext line\"")
    )


def test_a_path_cannot_forge_log_lines(client, caplog):
    """A stranger's path, percent-decoded, held a line break and a whole forged line after it:
    a value with spaces, quotes, '=' or control characters is written quoted and escaped."""
    forged = "request method=POST path=/admin/users/7/role status=303 user_id=1"
    with caplog.at_level(logging.INFO, logger="webapp.requests"):
        client.get("/nothing%0A" + forged.replace(" ", "%20"))
    [line] = [r.getMessage() for r in caplog.records if r.name == "webapp.requests"]
    assert "\n" not in line and line.startswith("request method=GET path=")
    assert 'path="/nothing\\nrequest method=POST' in line and line.endswith("user_id=-")


@pytest.mark.slow
def test_the_web_server_logs_each_request_once_and_escaped(config, tmp_path):
    """gunicorn as `make run` and the Procfile start it: the app's key=value line for every
    request (it was dropped: nothing set the web process's log level), and an access log line a
    path cannot split in two; no control socket."""
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from .helpers import ROOT, subprocess_env, wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    env = subprocess_env(config, PORT=str(port), WEB_CONCURRENCY="1", HOME=str(home))
    env.pop("XDG_RUNTIME_DIR", None)
    log_path = tmp_path / "web.log"
    with open(log_path, "w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return urllib.request.urlopen(f"{base}/health", timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_for(answers, 30, f"gunicorn to answer ({log_path})")
        try:
            urllib.request.urlopen(f"{base}/x%0Aforged%20line%20status=200", timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = log_path.read_text().splitlines()
    assert any("request method=GET path=/health status=200" in line for line in lines), lines
    assert not any(line.startswith("forged line") for line in lines), lines
    assert any('"GET /x%0Aforged%20line%20status=200 HTTP/1.1" 404' in line for line in lines), lines
    # Nothing the operator has no use for: alembic announced its autogenerate plugins, seven
    # lines for every web worker started, though the web process migrates nothing.
    assert not any("alembic" in line for line in lines), lines
    # No control socket in the user's home: gunicorn 27 made ~/.gunicorn/gunicorn.ctl, which every
    # other gunicorn of that user took over, and the first to stop deleted.
    assert not (home / ".gunicorn").exists()
