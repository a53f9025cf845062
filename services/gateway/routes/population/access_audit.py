"""/api/v1/access-audit, and what a reveal of a resident's full ID or phone number needs:
the stated purpose (header X-Reveal-Purpose), checked here and written to the access audit
by the population service."""

from __future__ import annotations

import contextlib
from urllib.parse import unquote

from flask import Blueprint, request
from pydantic import Field

from gridwork_common.paging import DEFAULT_PAGE
from services.gateway.api import Api, Call
from services.gateway.problems import ApiProblem
from services.gateway.routes.population.shared import (
    AUDITORS,
    SERVICE,
    TAG,
    Limit,
    RecordId,
    Reply,
    Request,
    page_args,
)

REVEAL_PURPOSE_HEADER = "X-Reveal-Purpose"
MAX_PURPOSE_LENGTH = 200
REVEAL_PURPOSE_PARAMETER = {
    "name": REVEAL_PURPOSE_HEADER,
    "in": "header",
    "required": False,
    # Not blank (a pattern is unanchored: it asks for one character that is not a space).
    "schema": {"type": "string", "pattern": r"\S", "maxLength": MAX_PURPOSE_LENGTH},
    "description": "Why the full values are needed (percent-encoded UTF-8 where a client "
    "cannot send it raw); required with `reveal`, which OpenAPI cannot state across a query "
    "parameter and a header: without it a reveal is answered 400 naming this header.",
}


def reveal_purpose(required: bool) -> str | None:
    """The stated purpose of a reveal: UTF-8, percent-encoded where a client cannot send
    non-ASCII header values. Checked as the document states it whenever it is sent (at
    most MAX_PURPOSE_LENGTH characters as sent), and required when `required`."""
    raw = request.headers.get(REVEAL_PURPOSE_HEADER, "")
    if len(raw) > MAX_PURPOSE_LENGTH:
        raise ApiProblem(
            400,
            "Bad Request",
            f"{REVEAL_PURPOSE_HEADER}: at most {MAX_PURPOSE_LENGTH} characters",
            field=REVEAL_PURPOSE_HEADER,
        )
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        raw = raw.encode("latin-1").decode("utf-8")  # raw UTF-8 bytes arrive as latin-1
    purpose = unquote(raw).strip()
    if not purpose and (required or REVEAL_PURPOSE_HEADER in request.headers):
        raise ApiProblem(
            400,
            "Bad Request",
            f"{REVEAL_PURPOSE_HEADER}: required when reveal is asked; state why the full "
            "value is needed",
            field=REVEAL_PURPOSE_HEADER,
        )
    return purpose or None


class AuditQuery(Request):
    resident_id: RecordId | None = None
    actor: RecordId | None = None
    cursor: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{24}$",
        description="the previous page's next_cursor (where the newer entries end)",
    )
    limit: Limit = DEFAULT_PAGE


class AuditEntry(Reply):
    id: str
    at: str
    actor: str
    roles: list[str]
    resident_id: str
    fields: list[str]
    purpose: str
    request_id: str | None = None


class AuditPage(Reply):
    items: list[AuditEntry]
    next_cursor: str | None


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "GET",
        "/access-audit",
        summary="Who saw whose full ID or phone number, and why (newest first)",
        tag=TAG,
        query=AuditQuery,
        response=AuditPage,
        roles=AUDITORS,
    )
    def access_audit(call: Call):
        query: AuditQuery = call.query
        return call.rpc(
            SERVICE,
            "access_audit",
            resident_id=query.resident_id,
            actor=query.actor,
            **page_args(query),
        )
