"""/api/v1/incidents: reporting a case, reading it, its timeline and possible duplicates,
and merging a duplicate into it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, after_this_request, request
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common.service_names import EVENTS
from gridwork_common.territory import code_pattern
from services.gateway.api import Api, Call
from services.gateway.preferences import (
    APPLIED_HEADER,
    PREFER_HEADER,
    RETURN_MINIMAL,
    prefers_minimal,
)
from services.gateway.routes.incidents.shared import (
    CATEGORY_CODE,
    CENTRE,
    REPORTERS,
    IncidentState,
    MediaIds,
    RequiredText,
)

Urgency = Literal["normal", "urgent"]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]


class ExtensionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    hours: float
    reason: str
    requested_by: str
    requested_at: datetime


class Incident(BaseModel):
    """A case as the caller sees it; `allowed_actions` lists what this caller may do now."""

    model_config = ConfigDict(extra="allow")
    id: str
    incident_id: str
    category: str
    urgency: Urgency
    grid_code: str
    description: str
    location: list[float] | None = Field(default=None, description="[longitude, latitude]")
    media_ids: list[str] = []
    reporter_id: str
    reported_at: datetime
    resolved_on_spot: bool = False
    state: IncidentState
    version: int
    owning_centre: str
    routing_path: list[str] = []
    escalation_path: list[str] = []
    escalation_count: int = 0
    department: str | None = None
    stage: str | None = None
    stage_seq: int = 0
    stage_started_at: datetime | None = None
    stage_due: datetime | None = None
    stage_warn_at: datetime | None = None
    pending_extension: ExtensionRequest | None = None
    approved_extensions: int = 0
    resume_state: str | None = None
    suspended_at: datetime | None = None
    return_count: int = 0
    rework_count: int = 0
    supervision_count: int = 0
    result: str | None = None
    rejection_reason: str | None = None
    duplicate_of: str | None = None
    satisfaction: int | None = None
    closed_at: datetime | None = None
    allowed_actions: list[str] = []
    escalated: bool = False
    supervised: bool = False
    overdue: bool = False
    merged_ids: list[str] = []
    patrol_id: str | None = None
    replayed_version: int | None = Field(
        default=None,
        description="Set when the events service answered a repeated command key: the "
        "version that command produced",
    )


class DuplicateCandidate(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    state: IncidentState
    category: str
    grid_code: str
    reported_at: datetime
    description: str = ""


class DuplicateList(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[DuplicateCandidate]


class ReportResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    incident: Incident
    possible_duplicates: list[DuplicateCandidate] | None = Field(
        default=None,
        description="Open cases of the same category nearby, reported recently; left "
        "out (not searched) when the request said `Prefer: return=minimal`",
    )


class MergeResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    incident: Incident = Field(description="The case the duplicate was merged into")
    merged: Incident = Field(description="The duplicate, now rejected as a duplicate")


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str
    from_state: IncidentState | None = None
    to_state: IncidentState
    actor_id: str
    actor_roles: list[str] = []
    at: datetime
    comment: str = ""
    media_ids: list[str] = []
    details: dict[str, Any] = {}


class Timeline(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[TimelineEntry]


class NewIncident(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(pattern=CATEGORY_CODE, description="A catalogue item code, e.g. 02.01")
    urgency: Urgency = "normal"
    description: RequiredText
    location: tuple[Longitude, Latitude] | None = Field(
        default=None,
        description="[longitude, latitude]; without it a grid worker reports in their own grid",
    )
    grid_code: str | None = Field(
        default=None,
        pattern=code_pattern("grid", "grid"),
        description="Without a location: a centre recording a phoned-in report for a grid",
    )
    media_ids: MediaIds = []
    resolved_on_spot: bool = False
    reporter_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Who reported it, if not the caller (centres report for citizens)",
    )
    patrol_id: uuid.UUID | None = Field(
        default=None, description="The patrol it was found on (the phone's UUID for the patrol)"
    )


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duplicate_id: str = Field(min_length=1, max_length=200)
    expected_version: int = Field(ge=1, description="The duplicate's version")


PREFER_PARAMETER = {
    "name": PREFER_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "RFC 7240 preferences. `return=minimal`: the answer leaves out "
    "`possible_duplicates` and the search for them (the phone app sends it: it shows "
    "none after a report). Others are ignored.",
}


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/incidents",
        summary="Report an incident",
        tag="incidents",
        body=NewIncident,
        response=ReportResult,
        status=201,
        roles=REPORTERS,
        idempotent=True,
        replayed_by_service=True,  # the case's id follows from the reporter and the key
        activity_event="incident.reported",  # the reporter's activity (its actor)
        description="The grid is found from the location. A location outside the county is "
        "422. The answer lists possible duplicates nearby, unless the request says "
        "`Prefer: return=minimal` (then they are not searched, the answer says "
        "`Preference-Applied: return=minimal`, and "
        "`GET /incidents/{incident_id}/duplicates` finds them later). A retry with the "
        "same Idempotency-Key answers the same case as it stands then.",
        headers=(PREFER_PARAMETER,),
    )
    def report_incident(call: Call):
        report = call.body.model_dump(mode="json", exclude_none=True)
        minimal = prefers_minimal(request.headers.get(PREFER_HEADER))
        result = call.rpc(
            EVENTS, "report_incident", report, call.idempotency_key, duplicates=not minimal
        )
        if minimal:

            @after_this_request
            def say_applied(response: Response) -> Response:
                response.headers[APPLIED_HEADER] = RETURN_MINIMAL
                return response

        return result

    @api.operation(
        blueprint,
        "GET",
        "/incidents/{incident_id}",
        summary="A case, with what the caller may do to it now",
        tag="incidents",
        response=Incident,
    )
    def get_incident(call: Call):
        return call.rpc(EVENTS, "get_incident", call.path["incident_id"])

    @api.operation(
        blueprint,
        "GET",
        "/incidents/{incident_id}/timeline",
        summary="Who did what to a case, and when",
        tag="incidents",
        response=Timeline,
    )
    def incident_timeline(call: Call):
        return {"items": call.rpc(EVENTS, "timeline", call.path["incident_id"])}

    @api.operation(
        blueprint,
        "GET",
        "/incidents/{incident_id}/duplicates",
        summary="Open cases of the same category near a case, reported recently",
        tag="incidents",
        response=DuplicateList,
    )
    def incident_duplicates(call: Call):
        return {"items": call.rpc(EVENTS, "possible_duplicates", call.path["incident_id"])}

    @api.operation(
        blueprint,
        "POST",
        "/incidents/{incident_id}/merge",
        summary="Merge a duplicate report into this case",
        tag="incidents",
        body=MergeRequest,
        response=MergeResult,
        roles=CENTRE,
        idempotent=True,
        description="The duplicate is rejected as a duplicate of this case; expected_version "
        "is the duplicate's version.",
    )
    def merge_incident(call: Call):
        body: MergeRequest = call.body
        return call.rpc(
            EVENTS,
            "merge",
            call.path["incident_id"],
            body.duplicate_id,
            body.expected_version,
            call.idempotency_key,
        )
