"""For every command-centre request: CSRF on unsafe methods, the signed-in caller (or
the login page), and a strict Content-Security-Policy on the answer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFProtect

from gridwork_common.context import CallerContext
from services.gateway import store
from services.gateway.ui.pages import Page, Unavailable

# Reachable without a session: the login form, and files that are the same for everyone.
# The phone app's manifest and service worker are fetched by the browser without asking.
PUBLIC_ENDPOINTS = frozenset(
    {
        "ui.login",
        "ui.login_submit",
        "ui.static",
        "ui.vendor",
        "ui.phone.manifest",
        "ui.phone.service_worker",
    }
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STATIC_ENDPOINTS = frozenset({"ui.static", "ui.vendor"})
STATIC_MAX_AGE_S = 3600


def content_security_policy(settings) -> str:
    photos = photo_store_origin(settings)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob: {photos}; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def photo_store_origin(settings) -> str:
    """Where presigned photo URLs point: the object store's public endpoint."""
    scheme = "https" if settings.s3_public_secure else "http"
    return f"{scheme}://{settings.s3_public_endpoint}"


def ui_headers(response: Response, policy: str) -> Response:
    """What every command-centre answer carries, over the gateway's defaults."""
    response.headers["Content-Security-Policy"] = policy
    # Same-origin form posts carry a Referer: flask-wtf checks it over HTTPS.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def install(blueprint: Blueprint, csrf: CSRFProtect, settings) -> None:
    policy = content_security_policy(settings)

    @blueprint.before_request
    def protect_and_identify():
        if getattr(session, "unavailable", False):
            raise Unavailable("the session store did not answer")
        if request.method in UNSAFE_METHODS:
            csrf.protect()  # CSRFError (the 403 page) without the session's token
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        user = signed_in_user()
        if user is None:
            return to_login()
        caller = CallerContext(
            user_id=user["_id"],
            roles=tuple(user.get("roles") or ()),
            scope=user.get("scope"),
            department=user.get("department"),
            request_id=g.request_id,
        )
        g.caller = caller  # the gateway's activity and request log see UI actions too
        g.ui_page = Page(
            caller,
            {
                "username": user["_id"],
                "name": user.get("name") or user["_id"],
                "roles": list(caller.roles),
                "scope": caller.scope,
                "department": caller.department,
            },
        )
        return None

    @blueprint.after_request
    def headers(response: Response) -> Response:
        if request.endpoint in STATIC_ENDPOINTS and response.status_code == 200:
            response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE_S}"
        # A page may widen connect-src (the phone app's photo uploads): g says so.
        return ui_headers(response, g.get("content_security_policy", policy))


def signed_in_user() -> dict | None:
    """The session's user as stored now: a disabled account, or one whose sessions were
    ended since this one began (a password reset, changed roles), ends the session."""
    username = session.get("user")
    if username is None:
        return None
    settings = current_app.config["GRIDWORK_SETTINGS"]
    user = store.gateway_db(settings)[store.USERS].find_one({"_id": username}, {"password_hash": 0})
    valid_after = (user or {}).get("tokens_valid_after", 0)
    if user is None or user.get("disabled") or session.get("signed_in_at", 0) < valid_after:
        session.end()
        return None
    return user


def to_login() -> Response:
    target = url_for("ui.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        response = Response(status=204)
        response.headers["HX-Redirect"] = target  # htmx follows it as a full page load
        return response
    return redirect(target)


def safe_next(target: str | None) -> str:
    """Only a path on this site (never `//elsewhere` or a full URL) after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("ui.home")
    return target
