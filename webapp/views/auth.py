"""Logging in and out, signed API tokens, and the personal API tokens page."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..auth import csrf_exempt
from ..extensions import limiter
from ..services import accounts
from . import jsonbody
from .errors import error_response

bp = Blueprint("auth", __name__)

THROTTLED = "Too many failed attempts for this account from your address. Wait a minute and try again."


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_key() -> str:
    """Failed attempts are counted per account and per address together."""
    if request.is_json:
        email = (request.get_json(silent=True) or {}).get("email")
    else:
        email = request.form.get("email")
    email = email if isinstance(email, str) else ""
    return f"login:{request.remote_addr}:{accounts.normalize_email(email)}"


def _failed(response) -> bool:
    return response.status_code == 401


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never "//other.host" or "https://…".
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.jobs")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    _login_limit, key_func=_login_key, methods=["POST"], deduct_when=_failed, error_message=THROTTLED
)
def login():
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "")
    user = accounts.authenticate(email, request.form.get("password", ""))
    if user is None:
        return render_template(
            "login.html", error="Wrong email or password.", email=email, next=request.form.get("next", "")
        ), 401
    login_user(user, remember=bool(request.form.get("remember")))
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.post("/auth/token")
@csrf_exempt
@limiter.limit(_login_limit, key_func=_login_key, deduct_when=_failed, error_message=THROTTLED)
def issue_token():
    """Email + password to a short-lived signed bearer token (for JWT-style clients)."""
    data = jsonbody.read_object()
    email = jsonbody.string_field(data, "email", max_length=254)
    password = jsonbody.string_field(data, "password", max_length=1000)
    user = accounts.authenticate(email, password)
    if user is None:
        return error_response(401, "Wrong email or password.")
    ttl = current_app.config["AUTH_TOKEN_TTL"]
    token = accounts.issue_signed_token(user, current_app.config["SECRET_KEY"])
    return {"accessToken": token, "tokenType": "Bearer", "expiresIn": ttl}


@bp.get("/account/tokens")
@login_required
def tokens():
    return render_template("tokens.html", tokens=accounts.list_api_tokens(current_user))


@bp.post("/account/tokens")
@login_required
def create_token():
    try:
        token, plain = accounts.create_api_token(current_user, request.form.get("name", ""))
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("auth.tokens"))
    return render_template(
        "tokens.html",
        tokens=accounts.list_api_tokens(current_user),
        new_token=plain,
        new_token_name=token.name,
    )


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    if accounts.revoke_api_token(current_user, token_id):
        flash("Token revoked. Clients using it are refused from now on.", "info")
    else:
        flash("No such token.", "error")
    return redirect(url_for("auth.tokens"))
