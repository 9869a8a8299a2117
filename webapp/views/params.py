"""Whole numbers from URLs and query strings, bounded so that none reaches the database
as something it cannot store (a 64-bit integer at most): 404 in a path, 400 in a query."""

from __future__ import annotations

from flask import abort, request
from werkzeug.routing import IntegerConverter

INT64_MAX = 2**63 - 1
# Far past any real list, and small enough that page × per page stays a 64-bit offset.
MAX_PAGE = 1_000_000


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 … 2^63 − 1; anything else matches no route (404)."""

    def __init__(self, url_map, **kwargs):
        super().__init__(url_map, min=1, max=INT64_MAX)


def query_int(name: str, default: int | None, *, lo: int = 1, hi: int = INT64_MAX) -> int | None:
    """An integer query parameter within [lo, hi]; 400 naming the parameter otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    raw = raw.strip()
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 20 or not lo <= int(raw) <= hi:
        abort(400, description=f"'{name}' must be a whole number from {lo} to {hi}.")
    return int(raw)
