"""How a request is authenticated: session cookie (Flask-Login) or bearer token.

A request carrying `Authorization: Bearer …` is judged by that token alone (the
session is ignored), and needs no CSRF token: browsers never attach such a
header to a cross-site request. Every other state-changing request must carry
the CSRF token.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, g, redirect, request, url_for
from flask_login import current_user

from .extensions import csrf, db, login_manager
from .models import User
from .services import accounts, principals, tokens
from .views.errors import error_response
from .views.negotiate import Reply, reply

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
# Posts that log someone in: checked without a session too, or another site could log a
# visitor into an account of its choosing (login CSRF).
LOGIN_ENDPOINTS = {"auth.login", "invites.set_password"}


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, '' when malformed, None when absent."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a session or remember-me cookie, if that login is still valid.

    The id is "<user id>:<session version>:<login time>:<nonce>" (User.get_id; ids from before
    the nonce have three parts): a login ends when the user's session version moves on
    (password change, deactivation, "log out everywhere"), when it is older than
    REMEMBER_COOKIE_DURATION, or when it was logged out (accounts.end_login).
    """
    if bearer_token() is not None:
        return None  # a request with a bearer header is judged by the header alone
    parts = session_id.split(":") if isinstance(session_id, str) else []
    if len(parts) not in (3, 4) or not all(part.isdigit() and len(part) <= 18 for part in parts):
        return None  # ids from before session versions, or forged ones
    user_id, version, stamp, *nonce = (int(part) for part in parts)
    age = time.time() - stamp
    if not -60 < age < current_app.config["REMEMBER_COOKIE_DURATION"].total_seconds():
        return None

    def check() -> tuple[User, None] | None:
        user = db.session.get(User, user_id)
        if user is None or not user.active or user.session_version != version:
            return None
        if accounts.login_ended(session_id):
            return None
        return user, None

    user = principals.user_for(f"session:{session_id}", check)
    if user is not None:
        user.login_stamp, user.login_nonce = stamp, (nonce[0] if nonce else None)
    return user


@login_manager.request_loader
def load_user_from_request(_request) -> User | None:
    token = bearer_token()
    if not token:
        return None
    user = tokens.user_for_bearer(
        token, current_app.config["SECRET_KEY"], current_app.config["AUTH_TOKEN_TTL"]
    )
    if user is not None:
        g.authenticated_by_token = True
    return user


MISSING_CREDENTIALS = "Authentication required: log in or send an Authorization: Bearer token."
INVALID_TOKEN = "The bearer token is not valid: it is unknown, revoked or expired."
MALFORMED_HEADER = "The Authorization header must read 'Bearer <token>'."


def _refused_credentials() -> tuple[str, str]:
    """Why the request is not authenticated, and the WWW-Authenticate challenge (RFC 6750) to send:
    a client without credentials is told to send some; one with a bad token, that it is bad."""
    token = bearer_token()
    if token is None:
        return MISSING_CREDENTIALS, "Bearer"
    if token == "" and not request.headers.get("Authorization", "").lower().startswith("bearer"):
        return MALFORMED_HEADER, 'Bearer error="invalid_request"'
    return INVALID_TOKEN, 'Bearer error="invalid_token"'


def _here() -> str:
    """This request's path and query, without the stray "?" of request.full_path."""
    query = request.query_string.decode("latin-1")
    return f"{request.path}?{query}" if query else request.path


def _page_before() -> str:
    """The page this request came from (htmx's HX-Current-URL, else the Referer) when it is on
    this site, as path and query; else this request's own path for a GET, the jobs page for
    an action."""
    for header in ("HX-Current-URL", "Referer"):
        url = urlsplit(request.headers.get(header, ""))
        if url.netloc == request.host and url.scheme in ("http", "https") and url.path.startswith("/"):
            return f"{url.path}?{url.query}" if url.query else url.path
    return _here() if request.method in SAFE_METHODS else url_for("pages.jobs")


@login_manager.unauthorized_handler
def unauthorized():
    kind = reply()
    if kind is Reply.JSON:
        message, challenge = _refused_credentials()
        response = error_response(401, message)
        response.headers["WWW-Authenticate"] = challenge
        return response
    if request.method in SAFE_METHODS and kind is not Reply.FRAGMENT:
        login = url_for("auth.login", next=_here())
    else:
        # A button pressed or a panel polled on a page after the session ended: back to that
        # page after logging in (not to the action's URL or a bare fragment), told why.
        flash("Your session has ended; log in again to continue.", "info")
        login = url_for("auth.login", next=_page_before())
    if kind is Reply.FRAGMENT:
        # An htmx poll after the session ended: send the whole page to the login form.
        response = error_response(401, "Your session has ended; please log in again.")
        response.headers["HX-Redirect"] = login
        return response
    return redirect(login)


def csrf_exempt(view):
    """Mark a view that needs no CSRF token (it accepts only JSON, which no cross-site form can send)."""
    view.csrf_exempt = True
    return view


def check_csrf() -> None:
    """Refuse a state-changing browser request without a valid CSRF token."""
    if request.method in SAFE_METHODS or bearer_token() is not None:
        return
    if request.blueprint == "rq_dashboard":
        return  # its own JavaScript cannot send our token; ops checks the Origin instead
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "csrf_exempt", False):
        return
    if not current_user.is_authenticated and request.endpoint not in LOGIN_ENDPOINTS:
        return  # no session to abuse: the view itself answers 401 (the login forms stay protected)
    csrf.protect()


def is_admin() -> bool:
    return bool(current_user.is_authenticated and current_user.is_admin)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.login_message_category = "info"
    app.before_request(check_csrf)
