"""Messages shown to users: never the server's own paths, and failures said in words."""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path

from flask import current_app

from ..render.errors import redact_paths


def _roots() -> list[tuple[str, str]]:
    config = current_app.config
    named = [
        (config.get("LESSONS_ROOT"), ""),
        (config.get("VIDEOS_ROOT"), "videos/"),
        (config.get("RENDER_CACHE_DIR"), "render cache/"),
        (current_app.instance_path, ""),
    ]
    found = []
    for root, label in named:
        if root:
            for form in {str(Path(root)), str(Path(root).resolve())}:
                found.append((form.rstrip("/") + "/", label))
    # Longest first, so a root inside another is replaced by its own label.
    return sorted(found, key=lambda item: -len(item[0]))


def without_server_paths(text: str | None) -> str | None:
    """The message with paths made relative to their root (lessons, videos, cache), and any
    other absolute path cut to its file name."""
    if not text:
        return text
    for root, label in _roots():
        text = text.replace(root, label)
    return redact_paths(text)


# The length of Lesson.problem.
LESSON_PROBLEM_MAX = 500


def cut(text: str | None, limit: int) -> str | None:
    """`text` in at most `limit` characters, ending in "…" when cut (to fit its column)."""
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def lesson_problem(text: str | None) -> str | None:
    """Why a lesson.json cannot be used, as stored and shown: no server path, at most
    LESSON_PROBLEM_MAX characters (the check may name several problems)."""
    return cut(without_server_paths(text), LESSON_PROBLEM_MAX)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 lesson", "2 lessons": the count with its noun in the right number."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def connection_failure(exc: BaseException, timeout: float) -> str:
    """Why a request to someone's endpoint got no answer, as its owner can act on it (not
    `URLError: [SSL: CERTIFICATE_VERIFY_FAILED] … (_ssl.c:1006)`)."""
    reason = getattr(exc, "reason", exc)  # urllib wraps the socket's error in a URLError
    if isinstance(reason, ssl.SSLCertVerificationError):
        detail = (reason.verify_message or "").rstrip(".")
        return f"The endpoint's TLS certificate is not trusted{f' ({detail})' if detail else ''}."
    if isinstance(reason, ssl.SSLError):
        return "The TLS handshake with the endpoint failed (does it speak HTTPS on that port?)."
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"No answer within {timeout:g} s."
    if isinstance(reason, ConnectionRefusedError):
        return "Connection refused: nothing accepts connections at that address and port."
    if isinstance(reason, ConnectionResetError):
        return "The endpoint closed the connection before answering."
    if isinstance(reason, http.client.HTTPException):  # never its text: whatever the endpoint sent
        return "The endpoint's answer is not HTTP."
    if isinstance(reason, socket.gaierror):
        return "The endpoint's host name cannot be resolved."
    if isinstance(reason, OSError) and reason.strerror:
        return f"The connection failed: {reason.strerror}."
    return f"The request failed: {reason}."
