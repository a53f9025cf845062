"""/api/v1/incidents queries: searching cases in the caller's territory, counting them by
state, and the worklists."""

from __future__ import annotations

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common.paging import DEFAULT_PAGE, MAX_PAGE
from gridwork_common.service_names import EVENTS
from services.gateway.api import Api, Call
from services.gateway.fields import IsoDateTime
from services.gateway.problems import ApiProblem
from services.gateway.routes.incidents.cases import Incident
from services.gateway.routes.incidents.shared import (
    CATEGORY_CODE,
    TERRITORY_CODE,
    IncidentState,
)

WORKLIST_KINDS = (
    "my_grid",
    "verification",
    "centre_queue",
    "department_inbox",
    "overdue",
    "supervised",
)


class IncidentPage(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[Incident]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class IncidentCounts(BaseModel):
    model_config = ConfigDict(extra="allow")
    territory: str
    by_state: dict[str, int]
    total: int


class IncidentSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: IncidentState | None = None
    category: str | None = Field(default=None, pattern=CATEGORY_CODE)
    territory: str | None = Field(default=None, pattern=TERRITORY_CODE)
    reported_from: IsoDateTime | None = Field(default=None, description="Inclusive")
    reported_to: IsoDateTime | None = Field(default=None, description="Exclusive")
    overdue: bool | None = None
    cursor: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cursor: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class CountsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    territory: str | None = Field(
        default=None, pattern=TERRITORY_CODE, description="Defaults to the caller's territory"
    )


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "GET",
        "/incidents",
        summary="Search cases within the caller's territory",
        tag="incidents",
        query=IncidentSearch,
        response=IncidentPage,
    )
    def search_incidents(call: Call):
        query: IncidentSearch = call.query
        filters = query.model_dump(mode="json", exclude_none=True, exclude={"cursor", "limit"})
        return call.rpc(EVENTS, "search", filters, query.cursor, query.limit)

    @api.operation(
        blueprint,
        "GET",
        "/incidents/counts",
        summary="Cases per state under a territory",
        tag="incidents",
        query=CountsQuery,
        response=IncidentCounts,
    )
    def count_incidents(call: Call):
        territory = call.query.territory or call.caller.scope
        if not territory:
            raise ApiProblem(400, "Bad Request", "territory: is required", field="territory")
        return call.rpc(EVENTS, "counts", territory)

    @api.operation(
        blueprint,
        "GET",
        "/incidents/worklists/{kind}",
        summary="A worklist: " + ", ".join(WORKLIST_KINDS),
        tag="incidents",
        query=PageQuery,
        response=IncidentPage,
        description="my_grid: open cases in the caller's territory; verification: cases "
        "awaiting verification there; centre_queue: cases the caller's centre must act on; "
        "department_inbox: cases dispatched to the caller's department; overdue; supervised.",
    )
    def worklist(call: Call):
        kind = call.path["kind"]
        if kind not in WORKLIST_KINDS:
            raise ApiProblem(
                404,
                "Not Found",
                f"kind: no worklist {kind!r}; one of {', '.join(WORKLIST_KINDS)}",
                field="kind",
            )
        return call.rpc(EVENTS, "worklist", kind, call.query.cursor, call.query.limit)
