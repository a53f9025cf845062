"""The command centre's error pages: what the API answers as problem+json, a browser
sees as a page in Chinese (404 for anything not found or out of scope, 503 with
Retry-After when a service or store did not answer)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from nameko.exceptions import RemoteError
from werkzeug.exceptions import HTTPException, NotFound

from services.gateway.problems import (
    RETRY_AFTER_S,
    ApiProblem,
    is_infrastructure_failure,
    problem,
)
from services.gateway.ui.pages import UiError, ui_error
from services.gateway.ui.security import content_security_policy, ui_headers
from services.gateway.ui.sessions import MACHINE_PREFIXES

log = logging.getLogger("gridwork.gateway")

TITLES = {
    400: _l("The request was not understood"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Not allowed"),
    409: _l("Changed meanwhile"),
    413: _l("Too large"),
    422: _l("Invalid input"),
    429: _l("Too many requests"),
    500: _l("Something went wrong"),
    503: _l("Temporarily unavailable"),
}
EXPLANATIONS = {
    403: _l(
        "Your role does not allow this, or the form had expired. Reload the page and try again."
    ),
    404: _l("There is no such page or record, or it is outside your area."),
    409: _l("Someone changed this record meanwhile. Reload it to see the current version."),
    429: _l("Too many attempts. Wait a few minutes and try again."),
    500: _l("The error was logged. Try again later."),
    503: _l("A service did not answer. Try again in a moment."),
}


def error_page(status: int, detail: str = ""):
    response = render_template(
        "ui/error.html",
        status=status,
        title=TITLES.get(status, TITLES[500]),
        explanation=EXPLANATIONS.get(status, ""),
        detail=detail,
    )
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    return response, status, headers


def install(blueprint: Blueprint) -> None:
    @blueprint.errorhandler(UiError)
    def ui_failure(exc: UiError):
        if exc.status == 503:
            log.warning("infrastructure unavailable", extra={"error": exc.message[:500]})
        # Messages of 404/403 are not shown: they could tell what lies outside the scope.
        detail = exc.message if exc.status in (409, 422) else ""
        return error_page(exc.status, detail)

    @blueprint.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError):
        return error_page(403)

    @blueprint.app_errorhandler(NotFound)
    def no_such_address(exc: NotFound):
        # A browser that follows a stale link gets the command centre's page; machines
        # (and every view outside the ui blueprint) keep the API's problem+json.
        if request.blueprints or request.path.startswith(MACHINE_PREFIXES):
            return problem(404, exc.name, exc.description)
        # Outside the blueprint its after_request does not run: its headers are set here.
        settings = current_app.config["GRIDWORK_SETTINGS"]
        page, status, headers = error_page(404)
        response = make_response(page, status, headers)
        return ui_headers(response, content_security_policy(settings))

    @blueprint.errorhandler(ApiProblem)
    def api_problem(exc: ApiProblem):
        page = error_page(exc.status)
        page[2].update(exc.headers)
        return page

    @blueprint.errorhandler(RemoteError)
    def remote(exc: RemoteError):  # a view that called the RPC client directly
        mapped = ui_error(exc)
        if isinstance(mapped, UiError):
            return ui_failure(mapped)
        log.error("unexpected error from a service", extra={"exc_type": exc.exc_type})
        return error_page(500)

    @blueprint.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_page(exc.code or 500)

    @blueprint.errorhandler(Exception)
    def unexpected(exc: Exception):
        if is_infrastructure_failure(exc):
            log.warning("infrastructure unavailable", extra={"error": repr(exc)[:500]})
            return error_page(503)
        log.exception("unhandled error in a page")
        return error_page(500)
