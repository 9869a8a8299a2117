"""Bearer tokens: personal API tokens (only their SHA-256 is stored) and signed tokens, and the
user a request's token stands for (remembered briefly: principals.py)."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta

import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import ApiToken, User, utcnow
from . import principals
from .accounts import password_fingerprint

API_TOKEN_PREFIX = "lvt_"
TOKENS_PER_USER_MAX = 50
TOKEN_NAME_MAX = 100  # the column's length
_SIGNED_TOKEN_SALT = "api-bearer-token"
# last_used_at is written at most this often, so polling clients do not write on every call.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash_token(token: str) -> str:
    # API tokens are 256 random bits: a fast hash is enough, unlike passwords.
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str) -> tuple[ApiToken, str]:
    """A new personal token; the plain token is returned once and never stored. Not for a
    deactivated user: it would start working when they are activated again."""
    if not user.active:
        raise ValueError(f"{user.email} is deactivated: activate them first (their tokens were revoked).")
    name = " ".join((name or "").split()) or "API token"
    if len(name) > TOKEN_NAME_MAX:
        raise ValueError(f"token names have at most {TOKEN_NAME_MAX} characters")
    working = db.session.scalars(  # the names of the user's working tokens: how many, which taken
        sa.select(ApiToken.name).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    held = len(working)
    if held >= TOKENS_PER_USER_MAX:
        raise ValueError(f"you hold {held} tokens, the most allowed; revoke one you no longer use")
    plain = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    name = _unused_name(name, set(working))
    token = ApiToken(user=user, name=name, token_hash=_hash_token(plain), prefix=plain[:12])
    db.session.add(token)
    db.session.commit()
    return token, plain


def _unused_name(name: str, taken: set[str]) -> str:
    """`name`, or "name (2)", "name (3)"… when one of the user's working tokens has it (`taken`),
    so each working token can be told apart by its name (to be revoked, say)."""
    n = 1
    candidate = name
    while candidate in taken:
        n += 1
        suffix = f" ({n})"
        candidate = name[: TOKEN_NAME_MAX - len(suffix)] + suffix
    return candidate


def list_api_tokens(user: User) -> list[ApiToken]:
    query = sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    return list(db.session.scalars(query))


def revoke_api_token(user: User, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False if there is no such token."""
    token = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    ).one_or_none()
    if token is None:
        return False
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return True


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SIGNED_TOKEN_SALT)


def issue_signed_token(user: User, secret_key: str) -> str:
    return _serializer(secret_key).dumps({"uid": user.id, "pw": password_fingerprint(user)})


def user_for_bearer(token: str, secret_key: str, max_age: int) -> User | None:
    """The active user a bearer token stands for: a personal API token or a signed token.
    A valid answer is remembered for principals.SECONDS (and never past a signed token's expiry)."""
    if not token:
        return None
    key = _hash_token(token)
    if token.startswith(API_TOKEN_PREFIX):
        return principals.user_for(key, lambda: _check_api_token(key))
    return principals.user_for(key, lambda: _check_signed_token(token, secret_key, max_age))


def _check_api_token(token_hash: str) -> tuple[User, None] | None:
    api_token = db.session.scalars(
        # One statement for the token and its user.
        sa.select(ApiToken).options(joinedload(ApiToken.user)).where(ApiToken.token_hash == token_hash)
    ).one_or_none()
    if api_token is None or api_token.revoked or not api_token.user.active:
        return None
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > _LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        db.session.commit()
    return api_token.user, None


def _check_signed_token(token: str, secret_key: str, max_age: int) -> tuple[User, float] | None:
    try:
        data, signed_at = _serializer(secret_key).loads(token, max_age=max_age, return_timestamp=True)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict):
        return None
    user = db.session.get(User, data.get("uid"))
    if user is None or not user.active or data.get("pw") != password_fingerprint(user):
        return None
    expires_in = signed_at.timestamp() + max_age - time.time()
    return user, time.monotonic() + expires_in
