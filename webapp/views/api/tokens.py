"""Signed tokens: email and password exchanged for a short-lived bearer token."""

from __future__ import annotations

from flask import current_app, request

from ...auth import csrf_exempt
from ...services import accounts, tokens
from ...services.throttle import Throttled
from .. import schemas as s
from ..errors import error_response
from .blueprint import bp, errors


@bp.route("/auth/token", methods=["POST"])
@csrf_exempt
@bp.arguments(s.TokenRequest)
@bp.response(200, s.TokenResponse)
@bp.doc(security=[])
@bp.doc(operationId="issueToken")
@errors(400, 413, 415, 429)
def issue_token(body: dict):
    """Email and password for a short-lived signed bearer token (for JWT-style clients)."""
    try:
        user = accounts.log_in(body["email"], body["password"], request.remote_addr)
    except Throttled as exc:
        response = error_response(429, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if user is None or not user.active:
        return error_response(401, "Wrong email or password." if user is None else accounts.DEACTIVATED)
    token = tokens.issue_signed_token(user, current_app.config["SECRET_KEY"])
    body = {"accessToken": token, "tokenType": "Bearer", "expiresIn": current_app.config["AUTH_TOKEN_TTL"]}
    return body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 5.1
