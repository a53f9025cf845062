"""Errors on GeoReport routes as GeoReport clients read them: a list of
`{"code": ..., "description": ...}` (XML: `<errors><error><code/><description/></error>
</errors>`) in the route's format, with the HTTP status as the code.

The gateway raises every error as problem+json (services/gateway/problems.py): its
validation, rate limits, 503s, unknown addresses and methods. One hook re-renders those
answers on a GeoReport address (`/open311/v2/<name>.json` or `.xml`), keeping the status and
headers (`Retry-After`, `Allow`). GeoReport knows no 422: a request that breaks a rule
is its "400 general service error"."""

from __future__ import annotations

import json

from flask import Response, request

from services.gateway.open311 import formats
from services.gateway.problems import PROBLEM_JSON

PREFIX = "/open311/v2/"
STATUS_IN_OPEN311 = {422: 400}


def route_format(path: str) -> str | None:
    """`json` or `xml` for a GeoReport address, else None (e.g. `/open311/v2/clients`)."""
    if not path.startswith(PREFIX):
        return None
    extension = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    return extension if extension in formats.FORMATS else None


def descriptions(problem: dict) -> list[str]:
    """One description per error: each field's problem, else the detail or title."""
    listed = [
        f"{error['field']}: {error['problem']}"
        for error in problem.get("errors") or []
        if isinstance(error, dict) and "field" in error and "problem" in error
    ]
    return listed or [str(problem.get("detail") or problem.get("title") or "error")]


def open311_errors(status: int, texts: list[str]) -> list[dict]:
    return [{"code": status, "description": text} for text in texts]


def as_open311_errors(response: Response) -> Response:
    """An `after_app_request` hook: problem+json on a GeoReport address becomes the
    GeoReport error list."""
    fmt = route_format(request.path)
    if fmt is None or response.mimetype != PROBLEM_JSON:
        return response
    try:
        problem = json.loads(response.get_data())
    except ValueError:
        problem = {}
    status = STATUS_IN_OPEN311.get(response.status_code, response.status_code)
    response.status_code = status
    response.set_data(formats.encode(open311_errors(status, descriptions(problem)), fmt, "errors"))
    response.mimetype = formats.MEDIA_TYPES[fmt]
    return response
