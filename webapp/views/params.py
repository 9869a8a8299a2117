"""What a URL or form may carry, so that nothing reaches the database as something it cannot
store: ids fit their 32-bit columns (404 past that in a path, 400 in a query), no text holds a
NUL character (PostgreSQL refuses it; 400)."""

from __future__ import annotations

from flask import abort, current_app, request
from werkzeug.routing import IntegerConverter

# Ids are INTEGER columns: 32 bits on PostgreSQL (a larger number is an error there, not a miss).
ID_MAX = 2**31 - 1
# Far past any real list, and small enough that page × per page stays a 64-bit offset.
MAX_PAGE = 1_000_000


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 … 2^31 − 1; anything else matches no route (404)."""

    def __init__(self, url_map, **kwargs):
        super().__init__(url_map, min=1, max=ID_MAX)


def query_int(name: str, default: int | None, *, lo: int = 1, hi: int = ID_MAX) -> int | None:
    """An integer query parameter within [lo, hi]; 400 naming the parameter otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    raw = raw.strip()
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 20 or not lo <= int(raw) <= hi:
        abort(400, description=f"'{name}' must be a whole number from {lo} to {hi}.")
    return int(raw)


def refuse_nul_characters() -> None:
    """Before every request: a NUL in the path, the query or a form field is a 400. A multipart
    form is read here only when it is a small one (a lesson package is not read before its
    sender is known; its fields are numbers, which its form checks)."""
    values = [request.path, *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH") and _small_form():
        values += request.form.values()
    if any("\x00" in value for value in values):
        abort(400, description="The request contains a NUL character, which no field may hold.")


def _small_form() -> bool:
    if request.mimetype == "application/x-www-form-urlencoded":
        return True
    size, most = request.content_length, current_app.config["MAX_CONTENT_LENGTH"]
    return request.mimetype == "multipart/form-data" and size is not None and size <= most
