"""The generated contract holds: the document is valid OpenAPI, and schemathesis, run against a
live server with a valid token, finds no server error and no answer outside the document."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.slow


def test_the_document_is_valid_openapi(client):
    spec = client.get("/openapi.json").json
    validate(spec)
    error = spec["components"]["schemas"]["Error"]
    assert sorted(error["required"]) == ["error", "message", "statusCode", "success"]


def test_every_value_says_its_type(client):
    """A job's videoGenerationStatus and a render's state were an enum of no type: the docs page
    read "object (not_started | …)", and code generators make an untyped field of it."""

    def untyped(node, path=""):
        if isinstance(node, dict):
            if "enum" in node and "type" not in node:
                yield path
            for key, value in node.items():
                yield from untyped(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from untyped(value, f"{path}/{index}")

    assert list(untyped(client.get("/openapi.json").json)) == []
    assert "object (not_started" not in client.get("/docs").text


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    app, factory, live_server, tmp_path, caplog
):
    # Event streams end quickly here, so that generated calls to them return.
    app.config.update(EVENTS_MAX_SECONDS=0.05, EVENTS_HEARTBEAT_SECONDS=0.05)
    user = factory.user("integrator@example.com", courses=["Course A"])
    token = factory.token(user.email)
    job = factory.job("Course A", lessons=2)
    assert job.lessons
    st = Path(sys.executable).with_name("st")
    command = [
        str(st) if st.exists() else shutil.which("st") or "st",
        "run",
        f"{live_server}/openapi.json",
        "--url",
        live_server,
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        "--max-examples",
        "40",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--workers",
        "1",
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "1"),
        "--no-color",
    ]
    with caplog.at_level(logging.ERROR):
        out = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = out.stdout + out.stderr
    # A server error's traceback is in the app's log: show it with the report.
    assert out.returncode == 0, report[-6000:] + "\n" + caplog.text[-6000:]
    generated = re.search(r"Test cases:\s*(\d+) generated", report)
    assert generated, report[-3000:]
    assert int(generated.group(1)) >= 500, report[-3000:]
