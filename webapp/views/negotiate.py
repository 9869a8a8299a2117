"""What a request wants back: an htmx fragment, JSON, or a whole HTML page.

One rule for every view and error handler:

1. an htmx request (`HX-Request: true`, read through htmx-flask's `request.htmx`) gets a fragment;
2. under the API paths, where every answer is JSON, JSON, unless the view also offers HTML;
3. otherwise the client's stated preference (the quality of text/html against application/json in
   its Accept header) wins, and a tie goes to the path's default: JSON under the API paths, a
   page everywhere else.

A view whose answer differs by this rule says so to caches with `Vary: HX-Request, Accept` (VARY).
"""

from __future__ import annotations

import enum

from htmx_flask import request

# Paths whose every answer is JSON, whatever the Accept header says.
JSON_PREFIXES = ("/video-transform/", "/auth/token", "/api/", "/openapi.json", "/health", "/metrics")
# The request headers the rule reads.
VARY = ("HX-Request", "Accept")


class Reply(enum.Enum):
    FRAGMENT = "fragment"
    JSON = "json"
    PAGE = "page"


def reply(*, offers_html: bool = False) -> Reply:
    """The kind of answer this request wants. `offers_html`: the view answers HTML even under the
    API paths (the status URL's panel), so the Accept header decides there too."""
    if request.htmx:
        return Reply.FRAGMENT
    api_path = request.path.startswith(JSON_PREFIXES)
    if api_path and not offers_html:
        return Reply.JSON
    accept = request.accept_mimetypes
    html, json = accept["text/html"], accept["application/json"]
    if html != json:
        return Reply.PAGE if html > json else Reply.JSON
    return Reply.JSON if api_path else Reply.PAGE
