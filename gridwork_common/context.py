"""Who is calling: identity, roles, territory scope and request id.

The gateway puts these into nameko's context data on every RPC; nameko carries context
data along with every further RPC a worker makes, so every service sees the original
caller and can enforce scope and audit. Events do not carry it: departments read the
event exchanges, so events go out as CloudEvents with the request id alone
(gridwork_common.event_format), and an event handler runs with no caller but that id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from gridwork_common import logs

log = logging.getLogger("gridwork.calls")

USER_ID_KEY = "user_id"
ROLES_KEY = "roles"
SCOPE_KEY = "scope"
DEPARTMENT_KEY = "department"
REQUEST_ID_KEY = "request_id"


@dataclass(frozen=True)
class CallerContext:
    user_id: str | None = None
    roles: tuple[str, ...] = ()
    scope: str | None = None  # territory code the caller may see, e.g. a township
    request_id: str | None = None
    department: str | None = None  # a department handler's department code

    def to_context_data(self) -> dict:
        data = {
            USER_ID_KEY: self.user_id,
            ROLES_KEY: ",".join(self.roles),
            SCOPE_KEY: self.scope,
            DEPARTMENT_KEY: self.department,
        }
        data[REQUEST_ID_KEY] = self.request_id or new_request_id()
        # AMQP headers carry strings; an absent value is simply not sent.
        return {key: value for key, value in data.items() if value not in (None, "")}

    @classmethod
    def from_context_data(cls, data: Mapping) -> CallerContext:
        roles = data.get(ROLES_KEY) or ""
        if isinstance(roles, str):
            roles = [role for role in roles.split(",") if role]
        return cls(
            user_id=data.get(USER_ID_KEY),
            roles=tuple(roles),
            scope=data.get(SCOPE_KEY),
            request_id=data.get(REQUEST_ID_KEY),
            department=data.get(DEPARTMENT_KEY),
        )

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    def log_fields(self) -> dict:
        return {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "roles": ",".join(self.roles) or None,
            "scope": self.scope,
            "department": self.department,
        }


def new_request_id() -> str:
    return uuid.uuid4().hex


class Caller(DependencyProvider):
    """Hands each worker the CallerContext of the call it serves, binds it (with the
    call id) to every log line the worker writes, and logs one line per call."""

    def get_dependency(self, worker_ctx) -> CallerContext:
        return CallerContext.from_context_data(worker_ctx.data)

    def worker_setup(self, worker_ctx):
        caller = CallerContext.from_context_data(worker_ctx.data)
        logs.bind(
            service=worker_ctx.service_name,
            entrypoint=worker_ctx.entrypoint.method_name,
            call_id=worker_ctx.call_id,
            **caller.log_fields(),
        )

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            log.info("call handled")
        else:
            log.info("call failed", extra={"exception": exc_info[0].__name__})

    def worker_teardown(self, worker_ctx):
        logs.clear()
