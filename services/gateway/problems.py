"""RFC 9457 problem details: every error the gateway returns is application/problem+json,
naming the offending field where there is one. Errors the services raise over RPC are
mapped to statuses by their type; a traceback never leaves the gateway.

Infrastructure failures (the broker, a service, a mongod or the object store not
answering), whether met by the gateway itself or by a service and sent back as a
`RemoteError`, are classified in one place, `is_infrastructure_failure`, and answer 503
with `Retry-After`: the client retries later with the same Idempotency-Key."""

from __future__ import annotations

import logging
import socket

import amqp.exceptions
import kombu.exceptions
import pymongo.errors
from flask import Flask, Response, json, request
from nameko.exceptions import (
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)
from werkzeug.exceptions import HTTPException

from gridwork_common import idempotency
from gridwork_common.errors import InvalidInput, Unavailable

PROBLEM_JSON = "application/problem+json"
IDEMPOTENCY_HEADER = "Idempotency-Key"
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
# Seconds a client is told to wait before retrying after a 503.
RETRY_AFTER_S = 5

# What "the infrastructure did not answer" looks like, raised here or in a service.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    Unavailable,
    RpcTimeout,  # a service did not answer in time (killed, stopped, overloaded)
    UnknownService,  # no service consumes the queue (not started, or its queue is gone)
    MethodNotFound,  # a service of another version answered: a deployment in progress
    kombu.exceptions.OperationalError,  # the broker refused or dropped the connection
    amqp.exceptions.ConnectionError,  # connection-level AMQP errors (forced close, ...)
    pymongo.errors.ConnectionFailure,  # no server selectable, network errors, not primary
    pymongo.errors.ExecutionTimeout,
    pymongo.errors.WTimeoutError,
    socket.timeout,
    ConnectionError,  # refused, reset, broken pipe
    TimeoutError,
    socket.gaierror,
)


def _with_subclasses(types) -> set[str]:
    seen, pending = set(), list(types)
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.add(cls)
            pending.extend(cls.__subclasses__())
    return {cls.__name__ for cls in seen}


# A service's own failure of the same kinds arrives as a RemoteError naming its type
# (only names that cannot be mistaken for a service's own errors: amqp's InvalidCommand
# would be the events domain's).
REMOTE_INFRASTRUCTURE_TYPES = frozenset(
    _with_subclasses(
        (
            Unavailable,
            pymongo.errors.ConnectionFailure,
            pymongo.errors.ExecutionTimeout,
            pymongo.errors.WTimeoutError,
            ConnectionError,
            TimeoutError,
        )
    )
    | {
        "RpcTimeout",
        "UnknownService",
        "MethodNotFound",
        "OperationalError",  # kombu: the service's broker connection failed
        "RecoverableConnectionError",
        "ConnectionForced",
        "StorageUnavailable",  # media: the object store
        "MaxRetryError",  # urllib3 under the S3 client
    }
)


def is_infrastructure_failure(exc: BaseException) -> bool:
    """True for a failure that a retry later may cure: 503, never 500."""
    if isinstance(exc, RemoteError):
        return exc.exc_type in REMOTE_INFRASTRUCTURE_TYPES
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        return True
    if isinstance(exc, pymongo.errors.PyMongoError):
        # e.g. a transaction aborted by a failover: the driver labels it retryable
        return exc.has_error_label("TransientTransactionError") or exc.has_error_label(
            "RetryableWriteError"
        )
    return False


def unavailable(exc: BaseException) -> Response:
    """The 503 answer to an infrastructure failure (logged, never exposed)."""
    name = exc.exc_type if isinstance(exc, RemoteError) else type(exc).__name__
    log.warning("infrastructure unavailable", extra={"error": f"{name}: {exc}"[:500]})
    response = problem(
        503,
        "Service Unavailable",
        "A service or store did not answer; retry later with the same Idempotency-Key.",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


class ApiProblem(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extensions):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}  # e.g. Retry-After


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
        if candidate == idempotency.FIELD:  # the services' name for the request header
            candidate = IDEMPOTENCY_HEADER
            message = f"{IDEMPOTENCY_HEADER}: {message.split(': ', 1)[1]}"
        if (
            candidate.replace(".", "")
            .replace("_", "")
            .replace("[", "")
            .replace("]", "")
            .replace("-", "")
            .isalnum()
        ):
            field = candidate
    return ApiProblem(status, title, message, field=field)


def key_reused(exc: InvalidInput) -> ApiProblem:
    """The gateway's own records refusing a key reused for a different request (422, as
    when the gateway's Idempotency-Key record refuses it)."""
    return ApiProblem(
        422, "Invalid input", f"{IDEMPOTENCY_HEADER}: {exc.problem}", field=IDEMPOTENCY_HEADER
    )


def install_problem_handlers(app: Flask) -> None:
    @app.errorhandler(ApiProblem)
    def api_problem(exc: ApiProblem):
        response = problem(exc.status, exc.title, exc.detail, **exc.extensions)
        response.headers.extend(exc.headers)
        if exc.status == 503:
            response.headers.setdefault("Retry-After", str(RETRY_AFTER_S))
        return response

    @app.errorhandler(RemoteError)
    def service_error(exc: RemoteError):
        if is_infrastructure_failure(exc):
            return unavailable(exc)
        mapped = remote_problem(exc)
        return problem(mapped.status, mapped.title, mapped.detail, **mapped.extensions)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = problem(exc.code or 500, exc.name, exc.description)
        # e.g. the `Allow` of a 405 (RFC 9110: it lists the methods the path has)
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        if is_infrastructure_failure(exc):
            return unavailable(exc)
        app.logger.exception("unhandled error")
        return problem(500, "Internal Server Error", "The error was logged; nothing is exposed.")
