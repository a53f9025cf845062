"""What a command-centre view works with: the signed-in caller and RPC in their name.

    from services.gateway.ui.pages import FormError, current_page, requires_roles

    @blueprint.get("/population/<code>")
    @requires_roles(roles.CENTRE_OPERATOR, roles.LEADER)
    def territory(code):
        page = current_page()
        node = page.rpc(POPULATION, "get_territory", code)  # scope checked by the service

The services check roles and territory scope exactly as for the API (the same
CallerContext travels with every RPC). `Page.rpc` turns what a service answers into what
a browser should see: NotFound (which is also what out of scope looks like) → the 404
page, Forbidden → the 403 page, an infrastructure failure → the 503 page with
Retry-After, invalid input → `FormError` (the view re-renders its form with the field's
message), a conflict (stale version, illegal transition) → `Conflict` (the view shows the
fresh record; uncaught it is the 409 page).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps

from flask import current_app, g
from nameko.exceptions import RemoteError

from gridwork_common.context import CallerContext
from services.gateway.problems import (
    STATUS_OF_REMOTE_ERROR,
    is_infrastructure_failure,
    remote_problem,
)


class UiError(Exception):
    """An answer the command centre renders as one of its error pages."""

    status = 500

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message


class PageNotFound(UiError):
    status = 404


class PageForbidden(UiError):
    status = 403


class Conflict(UiError):
    """A stale version or an illegal transition: `kind` is the service's error type."""

    status = 409

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class Unavailable(UiError):
    status = 503


@dataclass
class FormError(UiError):
    """Invalid input: `field` names the form field (None when the service named none)."""

    field: str | None
    message: str
    status: int = 422

    def __post_init__(self):
        super().__init__(self.message)

    @property
    def errors(self) -> dict[str, str]:
        """{field: message}, what form templates read (`errors.get("name")`)."""
        return {self.field or "": self.message}


@dataclass(frozen=True)
class Page:
    caller: CallerContext
    user: Mapping = field(default_factory=dict)  # username, name, roles, scope, department

    def rpc(self, service: str, method: str, *args, **kwargs):
        try:
            return current_app.extensions["rpc"].call(
                service, method, *args, caller=self.caller, **kwargs
            )
        except RemoteError as exc:
            raise ui_error(exc) from exc
        except Exception as exc:
            if is_infrastructure_failure(exc):
                raise Unavailable(type(exc).__name__) from exc
            raise

    def has_role(self, *roles: str) -> bool:
        return self.caller.has_role(*roles)


def ui_error(exc: RemoteError) -> Exception:
    if is_infrastructure_failure(exc):
        return Unavailable(exc.exc_type)
    status, _ = STATUS_OF_REMOTE_ERROR.get(exc.exc_type, (500, ""))
    if status == 404:
        return PageNotFound(str(exc.value or ""))
    if status == 403:
        return PageForbidden(str(exc.value or ""))
    if status == 409:
        return Conflict(str(exc.value or ""), exc.exc_type)
    if status == 422:
        problem = remote_problem(exc)
        return FormError(problem.extensions.get("field"), problem.detail or "")
    return exc  # a bug: the 500 page, logged


def current_page() -> Page:
    """The signed-in caller of this request (set by the blueprint before every view)."""
    return g.ui_page


def requires_roles(*roles: str) -> Callable:
    """Only callers holding one of `roles` see the view; others get the 403 page."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_page().has_role(*roles):
                raise PageForbidden()
            return view(*args, **kwargs)

        guarded.required_roles = roles
        return guarded

    return decorate
