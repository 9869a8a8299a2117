"""Secrets shown once, after a redirect (Post/Redirect/Get): a new API token, an invitation's or
a reset's set-password link. Reloading the page then never repeats the action (a second token,
a reset that kills the link just sent), and never shows the secret again.

The secret waits in Redis for REVEAL_SECONDS under a random key; the session holds only that key
(never the secret: the session is a cookie), and the next GET of the page takes it, for the same
user only. Without Redis the POST answers the page itself, with the secret, as a fallback.
"""

from __future__ import annotations

import json
import logging
import secrets

from flask import redirect, session
from flask_login import current_user

from .. import queue

log = logging.getLogger(__name__)

REVEAL_SECONDS = 120
_SESSION_KEY = "reveal:{}"


def redirect_showing(kind: str, data: dict, location: str):
    """A 303 to `location`, whose next GET may take `data` (see take); None without Redis."""
    key = secrets.token_urlsafe(18)
    payload = json.dumps({"user": current_user.get_id(), "data": data})
    try:
        queue.keep_reveal(key, payload, REVEAL_SECONDS)
    except queue.Unavailable as exc:
        log.warning("reveal unavailable kind=%s error=%s", kind, exc)
        return None
    session[_SESSION_KEY.format(kind)] = key
    return redirect(location, 303)


def take(kind: str) -> dict | None:
    """What redirect_showing kept for this page, once; None when there is nothing (any more)."""
    key = session.pop(_SESSION_KEY.format(kind), None)
    if not key:
        return None
    try:
        payload = queue.take_reveal(key)
    except queue.Unavailable as exc:
        log.warning("reveal unavailable kind=%s error=%s", kind, exc)
        return None
    if payload is None:
        return None
    kept = json.loads(payload)
    return kept["data"] if kept["user"] == current_user.get_id() else None
