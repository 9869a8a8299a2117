"""Security headers on every response: a strict Content-Security-Policy, no framing,
no MIME sniffing, same-origin referrers, HSTS behind HTTPS, and no shared caching of what a
signed-in user is shown.

Our pages run no inline script and no eval (htmx is configured for that in base.html),
so scripts come from this site only. The RQ dashboard is not ours: its page carries one
inline script and compiles Underscore templates with `new Function`, so its policy admits
exactly that inline script (by hash) and eval, and nothing from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, current_app, g, request

_COMMON = (
    "default-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "media-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
APP_POLICY = "; ".join(("script-src 'self'", "style-src 'self'", *_COMMON))

# An inline <script> element (no src): its text is what a CSP hash covers.
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S | re.I)


def _hash(body: str) -> str:
    digest = hashlib.sha256(body.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def dashboard_policy(html: str) -> str:
    """The policy for one RQ dashboard page: its own inline scripts (by hash) and eval."""
    hashes = sorted(
        {
            _hash(m.group("body"))
            for m in _INLINE_SCRIPT.finditer(html)
            if "text/template" not in m.group("attrs").lower()
        }
    )
    scripts = " ".join(("script-src 'self' 'unsafe-eval'", *hashes))
    # Its markup carries style attributes; styles cannot run code.
    return "; ".join((scripts, "style-src 'self' 'unsafe-inline'", *_COMMON))


def app_policy(media_origin: str | None) -> str:
    """Our pages' policy; videos may also come from the object store's presigned URLs."""
    if not media_origin:
        return APP_POLICY
    media = f"media-src 'self' {media_origin}"
    return "; ".join(media if part == "media-src 'self'" else part for part in APP_POLICY.split("; "))


def set_security_headers(response):
    headers = response.headers
    if "Content-Security-Policy" not in headers:
        if request.blueprint == "rq_dashboard" and response.mimetype == "text/html":
            headers["Content-Security-Policy"] = dashboard_policy(response.get_data(as_text=True))
        else:
            headers["Content-Security-Policy"] = current_app.extensions.get("csp_policy", APP_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config["SESSION_COOKIE_SECURE"]:  # served over HTTPS only
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    _keep_private(response)
    return response


def _keep_private(response) -> None:
    """An answer made for a signed-in user (a session or a token) may be kept by their own browser,
    never by a proxy or CDN for the next user: `private`, and `no-cache` (ask again, ETags answer
    with 304) where the view said nothing; views that must not be stored at all say `no-store`.
    Only a user the request already loaded counts: nothing is looked up here."""
    user = g.get("_login_user")
    if user is None or not user.is_authenticated:
        return
    cache = response.cache_control
    if cache.no_store or cache.private:
        return
    if "Cache-Control" not in response.headers:
        cache.no_cache = True
    cache.public = False
    cache.private = True


def init_app(app: Flask) -> None:
    app.extensions["csp_policy"] = app_policy(app.extensions.get("store_origin"))
    app.after_request(set_security_headers)
