"""RFC 9457 problem details: every error the gateway returns is application/problem+json,
naming the offending field where there is one. Errors the services raise over RPC are
mapped to statuses by their type; a traceback never leaves the gateway."""

from __future__ import annotations

import logging
import socket

from flask import Flask, Response, json, request
from nameko.exceptions import (
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("gridwork.gateway")

# The services' error types (gridwork_common.errors and the events domain's subclasses).
STATUS_OF_REMOTE_ERROR = {
    "InvalidInput": (422, "Invalid input"),
    "InvalidField": (422, "Invalid input"),
    "InvalidCommand": (422, "Invalid input"),
    "OutsideTerritory": (422, "Outside the territory"),
    "NotFound": (404, "Not Found"),
    "Forbidden": (403, "Forbidden"),
    "NotPermitted": (403, "Forbidden"),
    "Conflict": (409, "Conflict"),
    "IllegalTransition": (409, "Illegal transition"),
    "StaleVersion": (409, "Stale version"),
    "Unavailable": (503, "Service Unavailable"),
    "StorageUnavailable": (503, "Service Unavailable"),
}


class ApiProblem(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extensions):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.extensions = extensions


def problem(status: int, title: str, detail: str | None = None, **extensions) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "instance": request.path}
    if detail:
        body["detail"] = detail
    body.update({key: value for key, value in extensions.items() if value is not None})
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def remote_problem(exc: RemoteError) -> ApiProblem:
    status, title = STATUS_OF_REMOTE_ERROR.get(exc.exc_type, (500, "Internal Server Error"))
    message = str(exc.value or "")
    if status == 500:
        log.error("unexpected error from a service", extra={"exc_type": exc.exc_type})
        return ApiProblem(500, title, "A service failed; the error was logged.")
    field = None
    if status in (409, 422) and ": " in message:
        candidate = message.split(": ", 1)[0]
        if candidate.replace(".", "").replace("_", "").replace("[", "").replace("]", "").isalnum():
            field = candidate
    return ApiProblem(status, title, message, field=field)


def install_problem_handlers(app: Flask) -> None:
    @app.errorhandler(ApiProblem)
    def api_problem(exc: ApiProblem):
        return problem(exc.status, exc.title, exc.detail, **exc.extensions)

    @app.errorhandler(RemoteError)
    def service_error(exc: RemoteError):
        mapped = remote_problem(exc)
        return problem(mapped.status, mapped.title, mapped.detail, **mapped.extensions)

    @app.errorhandler(MethodNotFound)
    @app.errorhandler(UnknownService)
    @app.errorhandler(RpcTimeout)
    @app.errorhandler(socket.error)
    def service_unavailable(exc: Exception):
        log.warning("service unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return problem(503, "Service Unavailable", "A service did not answer; try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return problem(exc.code or 500, exc.name, exc.description)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        app.logger.exception("unhandled error")
        return problem(500, "Internal Server Error", "The error was logged; nothing is exposed.")
