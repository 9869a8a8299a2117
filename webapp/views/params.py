"""What a URL or form may carry, so that nothing reaches the database as something it cannot
store: ids fit their 32-bit columns (404 past that in a path, 400 in a query), no text holds a
NUL character (PostgreSQL refuses it; 400)."""

from __future__ import annotations

from flask import abort, request
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
    """Before every request: a NUL in the path, the query or a form field is a 400."""
    values = [request.path, *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype == "application/x-www-form-urlencoded":
        values += request.form.values()
    if any("\x00" in value for value in values):
        abort(400, description="The request contains a NUL character, which no field may hold.")
