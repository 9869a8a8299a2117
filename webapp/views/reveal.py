"""Secrets shown once, after a redirect (Post/Redirect/Get): a new API token, an invitation's or
a reset's set-password link, a webhook's signing secret. Reloading the page then never repeats
the action (a second token, a reset that kills the link just sent), and never shows the secret
again.

The secret is never kept whole anywhere: Redis keeps it XORed with a random pad of its length
for REVEAL_SECONDS, and the session (a cookie, in the user's browser) keeps the pad and Redis'
key. The next GET of the page that shows that kind of secret (for that subject: the reset link of
user 7 waits for user 7's page) takes it, for the same user only. A few may wait at once (two
tabs). Without Redis the POST answers the page itself, with the secret, as a fallback.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time

from flask import redirect, session
from flask_login import current_user

from .. import queue, shared_state

log = logging.getLogger(__name__)

REVEAL_SECONDS = 120
MOST_WAITING = 4  # secrets waiting in one session (the oldest goes first)
_SESSION_KEY = "reveals"  # [[kind, subject, redis key, pad (base64), since], ...]


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def redirect_showing(kind: str, data: dict, location: str, subject: object = None):
    """A 303 to `location`, whose next GET may take `data` (see take); None without Redis."""
    plain = json.dumps({"user": current_user.get_id(), "data": data}).encode()
    pad, key = secrets.token_bytes(len(plain)), secrets.token_urlsafe(18)
    try:
        shared_state.keep_reveal(key, base64.b64encode(_xor(plain, pad)).decode(), REVEAL_SECONDS)
    except queue.Unavailable as exc:
        log.warning("reveal unavailable kind=%s error=%s", kind, exc)
        return None
    now = int(time.time())
    waiting = [e for e in session.get(_SESSION_KEY, []) if now - e[4] < REVEAL_SECONDS]
    entry = [kind, subject, key, base64.b64encode(pad).decode(), now]
    session[_SESSION_KEY] = [*waiting[-(MOST_WAITING - 1) :], entry]
    return redirect(location, 303)


def take(kind: str, subject: object = None) -> list[dict]:
    """What redirect_showing kept for this page (and subject), oldest first, each once; [] when
    there is nothing (any more)."""
    waiting = session.get(_SESSION_KEY) or []
    mine = [e for e in waiting if e[0] == kind and e[1] == subject]
    if not mine:
        return []
    session[_SESSION_KEY] = [e for e in waiting if e not in mine]
    shown = []
    for _kind, _subject, key, pad, _since in mine:
        try:
            kept = shared_state.take_reveal(key)
        except queue.Unavailable as exc:
            log.warning("reveal unavailable kind=%s error=%s", kind, exc)
            continue
        if kept is None:
            continue  # expired
        found = json.loads(_xor(base64.b64decode(kept), base64.b64decode(pad)))
        if found["user"] == current_user.get_id():
            shown.append(found["data"])
    return shown
