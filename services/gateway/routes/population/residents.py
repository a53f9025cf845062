"""/api/v1 residents: registering, reading (masked unless revealed), listing and searching
residents, changing, moving and deregistering them (against the version read), and their
change history."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint
from pydantic import ConfigDict, Field

from gridwork_common.paging import DEFAULT_PAGE
from services.gateway.api import Api, Call
from services.gateway.problems import ApiProblem
from services.gateway.routes.population.access_audit import (
    REVEAL_PURPOSE_HEADER,
    REVEAL_PURPOSE_PARAMETER,
    reveal_purpose,
)
from services.gateway.routes.population.groups import GroupMembership
from services.gateway.routes.population.shared import (
    SERVICE,
    TAG,
    Cursor,
    GridCode,
    Limit,
    Reply,
    Request,
    TerritoryCode,
    Version,
    as_items,
    page_args,
)

ResidentStatus = Literal["active", "moved_out", "deregistered"]


class NewResident(Request):
    id_type: str | None = Field(default=None, max_length=20, description="resident_id or passport")
    id_number: str = Field(min_length=1, max_length=32)
    nationality: str | None = Field(default=None, max_length=3, description="ISO 3166-1 alpha-3")
    name: str = Field(min_length=1, max_length=50)
    gender: str | None = Field(default=None, max_length=10)
    birth_date: str | None = Field(default=None, max_length=10, description="like 1990-03-07")
    phone: str | None = Field(default=None, max_length=40)
    ethnicity: str | None = Field(default=None, max_length=20)
    household_registration_place: str | None = Field(default=None, max_length=200)
    residence_type: str | None = Field(
        default=None, max_length=40, description="registered, floating, separated or overseas"
    )
    grid_code: GridCode
    house_id: str | None = Field(default=None, max_length=64)
    household_id: str | None = Field(default=None, max_length=64)
    relation_to_head: str | None = Field(default=None, max_length=40)
    employment: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=1000)


class Resident(Reply):
    id: str
    id_type: str
    id_number: str = Field(description="masked unless revealed")
    nationality: str
    name: str
    gender: str | None = None
    birth_date: str | None = None
    phone: str | None = Field(default=None, description="masked unless revealed")
    ethnicity: str | None = None
    household_registration_place: str | None = None
    residence_type: str
    grid_code: str
    house_id: str | None = None
    household_id: str | None = None
    relation_to_head: str | None = None
    employment: str | None = None
    notes: str | None = None
    status: ResidentStatus
    version: int
    created_at: str | None = None
    updated_at: str | None = None
    groups: list[GroupMembership] | None = Field(
        default=None, description="active group memberships, for those who see groups"
    )


class ResidentQuery(Request):
    reveal: str | None = Field(
        default=None,
        pattern=r"^(id_number|phone)(,(id_number|phone))?$",
        description=f"id_number and/or phone, comma-separated; needs {REVEAL_PURPOSE_HEADER}",
    )


class ResidentListQuery(Request):
    code: TerritoryCode
    status: ResidentStatus = "active"
    cursor: Cursor | None = None
    limit: Limit = DEFAULT_PAGE


class ResidentPage(Reply):
    items: list[Resident]
    next_cursor: str | None


class ResidentSearchQuery(Request):
    id_number: str | None = Field(default=None, min_length=1, max_length=32)
    phone: str | None = Field(default=None, min_length=1, max_length=40)


class ResidentList(Reply):
    items: list[Resident]


class ResidentChanges(Request):
    """The fields to change (only these are editable) and the version they apply to."""

    # expected_version and at least one field to change
    model_config = ConfigDict(json_schema_extra={"minProperties": 2})

    expected_version: Version = Field(description="the `version` you read")
    name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=40)
    ethnicity: str | None = Field(default=None, max_length=20)
    household_registration_place: str | None = Field(default=None, max_length=200)
    residence_type: str | None = Field(default=None, max_length=40)
    employment: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=1000)


class ResidentMove(Request):
    """Within the county (`to_grid_code`, optionally `to_house_id`) or `out_of_county`."""

    expected_version: Version
    to_grid_code: GridCode | None = None
    to_house_id: str | None = Field(default=None, min_length=1, max_length=64)
    out_of_county: str | None = Field(
        default=None, min_length=1, max_length=200, description="where the resident went"
    )


class ResidentDeregistration(Request):
    expected_version: Version
    reason: Literal["deceased", "emigrated", "duplicate", "other"]


class HistoryEntry(Reply):
    at: str
    by: str
    action: str
    changes: dict[str, Any] = Field(
        description="{field: {from, to}}; ID and phone numbers only {changed: true}"
    )


class HistoryList(Reply):
    items: list[HistoryEntry]


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/residents",
        summary="Register a resident",
        description="A registration retried with the same data returns the same resident.",
        tag=TAG,
        body=NewResident,
        response=Resident,
        status=201,
        idempotent=True,
    )
    def register_resident(call: Call):
        return call.rpc(SERVICE, "register_resident", call.body.model_dump(exclude_none=True))

    @api.operation(
        blueprint,
        "GET",
        "/residents",
        summary="Residents under a territory node, a page at a time",
        tag=TAG,
        query=ResidentListQuery,
        response=ResidentPage,
    )
    def list_residents(call: Call):
        query: ResidentListQuery = call.query
        return call.rpc(
            SERVICE, "list_residents", query.code, status=query.status, **page_args(query)
        )

    @api.operation(
        blueprint,
        "GET",
        "/residents/search",
        summary="Find residents by full ID number or phone number",
        description="Give exactly one of id_number and phone.",
        tag=TAG,
        query=ResidentSearchQuery,
        response=ResidentList,
    )
    def search_residents(call: Call):
        query: ResidentSearchQuery = call.query
        found = call.rpc(SERVICE, "find_resident", id_number=query.id_number, phone=query.phone)
        return as_items(found)

    @api.operation(
        blueprint,
        "GET",
        "/residents/{resident_id}",
        summary="A resident (ID and phone masked unless revealed)",
        description=(
            f"`?reveal=id_number,phone` returns full values; it needs the header "
            f"{REVEAL_PURPOSE_HEADER} (why; UTF-8, may be percent-encoded) and is written to "
            "the access audit."
        ),
        tag=TAG,
        query=ResidentQuery,
        response=Resident,
        headers=(REVEAL_PURPOSE_PARAMETER,),
    )
    def get_resident(call: Call):
        purpose = reveal_purpose(required=bool(call.query.reveal))
        if not call.query.reveal:
            return call.rpc(SERVICE, "get_resident", call.path["resident_id"])
        fields = sorted(set(call.query.reveal.split(",")))
        return call.rpc(
            SERVICE, "get_resident", call.path["resident_id"], reveal=fields, purpose=purpose
        )

    @api.operation(
        blueprint,
        "PATCH",
        "/residents/{resident_id}",
        summary="Change a resident's editable fields",
        description=(
            "The body names the fields to change and `expected_version`, the version read "
            "(If-Match is not used); a stale version is a 409."
        ),
        tag=TAG,
        body=ResidentChanges,
        response=Resident,
    )
    def update_resident(call: Call):
        body: ResidentChanges = call.body
        changes = body.model_dump(exclude_unset=True)
        changes.pop("expected_version")
        if not changes:
            raise ApiProblem(
                400, "Bad Request", "body: name at least one field to change", field="body"
            )
        return call.rpc(
            SERVICE, "update_resident", call.path["resident_id"], changes, body.expected_version
        )

    @api.operation(
        blueprint,
        "POST",
        "/residents/{resident_id}/move",
        summary="Move a resident to another grid, or out of the county",
        tag=TAG,
        body=ResidentMove,
        response=Resident,
        idempotent=True,
    )
    def move_resident(call: Call):
        body: ResidentMove = call.body
        return call.rpc(
            SERVICE,
            "move_resident",
            call.path["resident_id"],
            body.expected_version,
            to_grid_code=body.to_grid_code,
            to_house_id=body.to_house_id,
            out_of_county=body.out_of_county,
        )

    @api.operation(
        blueprint,
        "POST",
        "/residents/{resident_id}/deregister",
        summary="Deregister a resident (their group memberships are cleared)",
        tag=TAG,
        body=ResidentDeregistration,
        response=Resident,
        idempotent=True,
    )
    def deregister_resident(call: Call):
        body: ResidentDeregistration = call.body
        return call.rpc(
            SERVICE,
            "deregister_resident",
            call.path["resident_id"],
            body.expected_version,
            body.reason,
        )

    @api.operation(
        blueprint,
        "GET",
        "/residents/{resident_id}/history",
        summary="A resident's change history, oldest first",
        tag=TAG,
        response=HistoryList,
    )
    def resident_history(call: Call):
        return as_items(call.rpc(SERVICE, "resident_history", call.path["resident_id"]))
