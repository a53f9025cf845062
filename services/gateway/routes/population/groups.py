"""/api/v1 special and vulnerable groups and their visits: flagging and clearing group
members, the visits required a month by group and risk level, recording visits and a
worker's worklist of visits due and missed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import Field

from gridwork_common.paging import DEFAULT_PAGE
from services.gateway.api import Api, Call
from services.gateway.fields import IsoDateTimeFrom2000
from services.gateway.routes.population.shared import (
    ADMINISTRATORS,
    SERVICE,
    TAG,
    Cursor,
    Limit,
    RecordId,
    Reply,
    Request,
    TerritoryCode,
    as_items,
    page_args,
)

RiskLevel = Literal["high", "medium", "low"]
# The service owns the list of groups (and answers 422 naming `group` with it).
GroupName = Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]


class GroupMembership(Reply):
    id: str
    resident_id: str
    group: str
    kind: Literal["special", "vulnerable"]
    risk_level: RiskLevel
    responsible_worker_id: str
    grid_code: str
    active: bool
    flagged_at: str | None = None
    cleared_at: str | None = None


class NewMembership(Request):
    resident_id: RecordId
    group: GroupName = Field(description="e.g. severe_mental_disorder, low_income, disabled")
    risk_level: RiskLevel
    responsible_worker_id: RecordId
    note: str | None = Field(default=None, max_length=500)


class GroupClearance(Request):
    reason: str = Field(min_length=1, max_length=500)


class GroupListQuery(Request):
    code: TerritoryCode
    group: GroupName | None = None
    risk_level: RiskLevel | None = None
    cursor: Cursor | None = None
    limit: Limit = DEFAULT_PAGE


class MembershipPage(Reply):
    items: list[GroupMembership]
    next_cursor: str | None


class VisitRule(Request):
    group: GroupName
    risk_level: RiskLevel
    visits_per_month: int = Field(strict=True, ge=0, le=31)


class VisitRules(Reply):
    rules: dict[str, int] = Field(description='{"<group>:<risk level>": visits per month}')


class GeoJsonPoint(Request):
    type: Literal["Point"]
    coordinates: tuple[
        Annotated[float, Field(ge=-180, le=180)], Annotated[float, Field(ge=-90, le=90)]
    ] = Field(description="[longitude, latitude]")


class NewVisit(Request):
    membership_id: RecordId
    at: IsoDateTimeFrom2000 = Field(description="when, with a UTC offset; not in the future")
    location: GeoJsonPoint
    notes: str | None = Field(default=None, max_length=2000)
    media_ids: list[RecordId] = Field(default_factory=list, max_length=20)
    visit_id: RecordId | None = Field(
        default=None, description="the client's id: an upload retried later is not doubled"
    )
    patrol_id: uuid.UUID | None = Field(
        default=None, description="the patrol the visit was made on (listed on the patrol)"
    )


class Visit(Reply):
    id: str
    membership_id: str
    resident_id: str
    worker_id: str
    at: str
    period: str
    location: dict[str, Any]
    notes: str | None = None
    media_ids: list[str]
    patrol_id: str | None = None


class VisitList(Reply):
    items: list[Visit]


class WorklistQuery(Request):
    worker_id: RecordId | None = Field(default=None, description="default: the caller")
    period: str | None = Field(
        default=None,
        pattern=r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$",
        description="a month, like 2026-11",
    )


class VisitDue(GroupMembership):
    required: int
    done: int
    remaining: int


class VisitOverdue(GroupMembership):
    period: str
    required: int
    done: int
    missing: int


class VisitWorklist(Reply):
    worker_id: str
    period: str
    due: list[VisitDue]
    overdue: list[VisitOverdue]


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/groups",
        summary="Flag a resident as a member of a special or vulnerable group",
        description="Flagging an active member again updates the risk level and worker.",
        tag=TAG,
        body=NewMembership,
        response=GroupMembership,
        status=201,
        idempotent=True,
    )
    def flag_group(call: Call):
        body: NewMembership = call.body
        return call.rpc(
            SERVICE,
            "flag_group",
            body.resident_id,
            body.group,
            body.risk_level,
            body.responsible_worker_id,
            body.note,
        )

    @api.operation(
        blueprint,
        "POST",
        "/groups/{membership_id}/clear",
        summary="End a group membership",
        tag=TAG,
        body=GroupClearance,
        response=GroupMembership,
        idempotent=True,
    )
    def clear_group(call: Call):
        return call.rpc(SERVICE, "clear_group", call.path["membership_id"], call.body.reason)

    @api.operation(
        blueprint,
        "GET",
        "/groups",
        summary="Active group members under a territory node, a page at a time",
        tag=TAG,
        query=GroupListQuery,
        response=MembershipPage,
    )
    def list_group_members(call: Call):
        query: GroupListQuery = call.query
        return call.rpc(
            SERVICE,
            "list_group_members",
            query.code,
            group=query.group,
            risk_level=query.risk_level,
            **page_args(query),
        )

    @api.operation(
        blueprint,
        "GET",
        "/groups/{membership_id}/visits",
        summary="The visits to a group member, newest first",
        tag=TAG,
        response=VisitList,
    )
    def visits_of(call: Call):
        return as_items(call.rpc(SERVICE, "visits_of", call.path["membership_id"]))

    @api.operation(
        blueprint,
        "GET",
        "/visit-rules",
        summary="Visits required a month, by group and risk level",
        tag=TAG,
        response=VisitRules,
    )
    def visit_rules(call: Call):
        return {"rules": call.rpc(SERVICE, "visit_rules")}

    @api.operation(
        blueprint,
        "POST",
        "/visit-rules",
        summary="Set the visits required a month for a group and risk level",
        tag=TAG,
        body=VisitRule,
        response=VisitRules,
        roles=ADMINISTRATORS,
        idempotent=True,
    )
    def set_visit_rule(call: Call):
        body: VisitRule = call.body
        rules = call.rpc(
            SERVICE, "set_visit_rule", body.group, body.risk_level, body.visits_per_month
        )
        return {"rules": rules}

    @api.operation(
        blueprint,
        "POST",
        "/visits",
        summary="Record a visit to a group member",
        tag=TAG,
        body=NewVisit,
        response=Visit,
        status=201,
        idempotent=True,
    )
    def record_visit(call: Call):
        body: NewVisit = call.body
        visit = body.model_dump(mode="json", exclude_none=True)
        visit["at"] = body.at.isoformat()
        visit["location"] = {"type": "Point", "coordinates": list(body.location.coordinates)}
        return call.rpc(SERVICE, "record_visit", visit, call.idempotency_key)

    @api.operation(
        blueprint,
        "GET",
        "/visits/worklist",
        summary="A worker's visits due this period and those missed last period",
        tag=TAG,
        query=WorklistQuery,
        response=VisitWorklist,
    )
    def visit_worklist(call: Call):
        query: WorklistQuery = call.query
        return call.rpc(SERVICE, "visit_worklist", worker_id=query.worker_id, period=query.period)
