"""Logging in and out, signed API tokens, the account page and personal API tokens."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..services import accounts
from ..services import tokens as bearer_tokens
from ..services.throttle import Throttled
from . import forms, reveal

bp = Blueprint("auth", __name__)

# What browsers drop from a URL before following it: tabs and newlines anywhere,
# C0 controls and spaces at either end.
_BROWSER_STRIPPED = re.compile(r"[\t\n\r]|^[\x00-\x20]+|[\x00-\x20]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(target: str | None) -> str:
    """A same-site path to go to after logging in; anything else goes to the jobs page."""
    cleaned = _BROWSER_STRIPPED.sub("", target or "")
    if (
        cleaned.startswith("/")
        and not cleaned.startswith("//")
        and "\\" not in cleaned
        and not _CONTROL.search(cleaned)
        and len(cleaned) <= 2000
    ):
        parts = urlsplit(cleaned)
        if not parts.scheme and not parts.netloc:
            return cleaned
    return url_for("pages.jobs")


def _start_session(user, remember: bool) -> None:
    """Log the user in on a fresh session: nothing planted before the login (a CSRF secret,
    say) carries over into it."""
    session.clear()
    user.login_stamp = user.login_nonce = None  # a new login time and nonce in the session id
    login_user(user, remember=remember)


def _throttled(exc: Throttled, page):
    response = page(exc.message)
    response.status_code = 429
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method != "POST":  # GET and HEAD alike: never a password check
        if current_user.is_authenticated:
            return redirect(safe_next(request.args.get("next")))
        return render_template("login.html", form=forms.LoginForm(next_url=request.args.get("next", "")))
    form = forms.LoginForm()

    def page(error: str | None):
        return current_app.make_response(render_template("login.html", form=form, error=error))

    if not form.validate():  # a field left empty: said at the field, no password checked
        return page(None), 422
    try:
        user = accounts.log_in(form.email.data, form.password.data, request.remote_addr)
    except Throttled as exc:
        return _throttled(exc, page)
    if user is None:
        return page("Wrong email or password."), 401
    if not user.active:
        return page(accounts.DEACTIVATED), 401
    _start_session(user, remember=form.remember.data)
    return redirect(safe_next(form.next_url.data))


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        accounts.end_login(current_user)  # a copy of the cookie no longer works either
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.after_request
def no_store_for_account_pages(response):
    # Account pages show secrets (a new token) and personal data: never from a cache.
    if request.path.startswith("/account"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account")
@login_required
def account():
    return _account_page(forms.ChangePasswordForm())


@bp.post("/account/password")
@login_required
def change_password():
    form = forms.ChangePasswordForm()
    if not form.validate():
        return _account_page(form), 422
    try:
        user = accounts.change_password(
            current_user._get_current_object(),  # the user, not the proxy: login_user keeps it
            form.current_password.data,
            form.new_password.data,
            form.confirm_password.data,
            request.remote_addr,
        )
    except Throttled as exc:
        return _throttled(exc, lambda message: _account_page(form, message))
    except ValueError as exc:
        return _account_page(form, str(exc)), 422
    # This browser stays logged in (remembered if it was); every other login has ended.
    remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
    _start_session(user, remember=remembered)
    flash("Password changed. Every other session of yours has ended.", "info")
    return redirect(url_for("auth.account"))


def _account_page(form: forms.ChangePasswordForm, error: str | None = None):
    return current_app.make_response(render_template("account.html", form=form, error=error))


@bp.post("/account/logout-everywhere")
@login_required
def logout_everywhere():
    accounts.log_out_everywhere(current_user)
    logout_user()
    session.clear()
    flash("You are logged out everywhere: every session and remembered browser has ended.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/account/tokens")
@login_required
def tokens():
    return _tokens_page(forms.TokenForm(), created=reveal.take("token"))


@bp.post("/account/tokens")
@login_required
def create_token():
    form = forms.TokenForm()
    if not form.validate():
        return _tokens_page(form), 422
    try:
        token, plain = bearer_tokens.create_api_token(current_user, form.name.data)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("auth.tokens"))
    shown = {"token": plain, "name": token.name}
    return reveal.redirect_showing("token", shown, url_for("auth.tokens")) or _tokens_page(
        forms.TokenForm(formdata=None), created=[shown]
    )


def _tokens_page(form: forms.TokenForm, **context):
    return render_template(
        "tokens.html", form=form, tokens=bearer_tokens.list_api_tokens(current_user), **context
    )


@bp.post("/account/tokens/<id:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    if bearer_tokens.revoke_api_token(current_user, token_id):
        flash("Token revoked. Clients using it are refused from now on.", "info")
    else:
        flash("No such token.", "error")
    return redirect(url_for("auth.tokens"))
