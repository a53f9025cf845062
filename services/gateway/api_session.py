"""The JSON API for a signed-in browser: the phone app (/app/) syncs through the documented
`/api/v1` routes with the session cookie instead of a bearer token, so no token is ever
kept where a script could read it (localStorage, IndexedDB).

A request is taken as the session's only when it carries the session's CSRF token in the
`X-CSRFToken` header (a cross-site page cannot read it, and the cookie is SameSite=Strict)
and, when the browser says where it came from (`Origin`, `Sec-Fetch-Site`), it came from
this site. Anything else is treated like a request without a token: 401. A request with
an `Authorization` header is never read as a session request.
"""

from __future__ import annotations

from flask import Request, request, session
from flask_wtf.csrf import ValidationError, validate_csrf

from gridwork_common.context import CallerContext
from services.gateway.problems import RETRY_AFTER_S, ApiProblem

CSRF_HEADER = "X-CSRFToken"
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def wants_session(req: Request) -> bool:
    """An API request from the app: no bearer token, the session's CSRF header."""
    return not req.headers.get("Authorization") and bool(req.headers.get(CSRF_HEADER))


def session_caller(request_id: str) -> CallerContext:
    """The signed-in user of this request's session, as the API's caller."""
    # Imported here: the ui package imports the API (its forms use the request models).
    from services.gateway.ui.security import signed_in_user

    if getattr(session, "unavailable", False):
        problem = ApiProblem(503, "Service Unavailable", "the session store did not answer")
        problem.headers["Retry-After"] = str(RETRY_AFTER_S)
        raise problem
    if not _same_origin(request):
        raise ApiProblem(401, "Unauthorized", "a session is only accepted from this site")
    try:
        validate_csrf(request.headers.get(CSRF_HEADER))
    except ValidationError:
        raise ApiProblem(
            401, "Unauthorized", f"{CSRF_HEADER}: not this session's token", field=CSRF_HEADER
        ) from None
    user = signed_in_user()
    if user is None:
        raise ApiProblem(401, "Unauthorized", "the session has ended: sign in again")
    return CallerContext(
        user_id=user["_id"],
        roles=tuple(user.get("roles") or ()),
        scope=user.get("scope"),
        department=user.get("department"),
        request_id=request_id,
    )


def _same_origin(req: Request) -> bool:
    fetch_site = req.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in SAME_SITE_FETCHES:
        return False
    origin = req.headers.get("Origin")
    return origin is None or origin.rstrip("/") == req.host_url.rstrip("/")
