"""The county's incident setup: the catalogue of incidents (/catalogue), departments
(/departments), the working calendar (/calendar) and the deadline policy
(/deadline-policy)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common.service_names import EVENTS
from services.gateway.api import Api, Call
from services.gateway.fields import IsoDate
from services.gateway.routes.incidents.shared import (
    CATEGORY_CODE,
    CENTRE_CODE,
    DEPARTMENT_KIND,
    SETUP_WRITERS,
)

Level = Literal["village", "township", "county"]
StageHours = Annotated[float, Field(gt=0, le=2000, description="Working hours")]
HourMinute = Annotated[
    str, Field(pattern=r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local time")
]


class CatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    name: str
    owners: dict[str, str]
    on_site_allowed: bool
    public: bool
    time_limits: dict[str, dict[str, float]]


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: int
    categories: dict[str, str]
    entries: list[CatalogueEntry]


class Department(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    name: str
    kind: str
    territory_code: str
    level: Level


class DepartmentList(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[Department]


class WorkingCalendar(BaseModel):
    model_config = ConfigDict(extra="allow")
    periods: list[list[str]]
    weekend: list[int]
    holidays: list[date]
    makeup_workdays: list[date]
    utc_offset_minutes: int


class DeadlinePolicy(BaseModel):
    model_config = ConfigDict(extra="allow")
    auto_escalate_after_hours: float
    duplicate_radius_m: float
    duplicate_window_hours: float


class CatalogueQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1, description="Defaults to the current one")
    public_only: bool = False


class DepartmentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    territory_code: str | None = Field(default=None, pattern=CENTRE_CODE)


class StageLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accept: StageHours
    # `register` would shadow BaseModel.register: the field is named by its alias.
    register_stage: StageHours = Field(alias="register")
    dispatch: StageHours
    sign: StageHours
    handle: StageHours
    verify: StageHours
    close: StageHours


class TimeLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    normal: StageLimits
    urgent: StageLimits = Field(description="No stage longer than the normal one")


class NewCatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=CATEGORY_CODE)
    name: str = Field(min_length=1, max_length=200)
    owners: dict[Level, Annotated[str, Field(pattern=DEPARTMENT_KIND)]] = Field(
        min_length=1, description="Level -> department kind owning the item there"
    )
    on_site_allowed: bool = False
    public: bool = True
    time_limits: TimeLimits


class NewCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    categories: dict[Annotated[str, Field(pattern=r"^[0-9]{2}$")], str] = Field(min_length=1)
    entries: list[NewCatalogueEntry] = Field(min_length=1)


class NewDepartment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    territory_code: str = Field(pattern=CENTRE_CODE, description="A county, township or village")
    kind: str = Field(pattern=DEPARTMENT_KIND, description="e.g. police-station")
    name: str = Field(min_length=1, max_length=100)
    code: str | None = Field(
        default=None,
        max_length=200,
        description="<territory_code>-<kind>; derived when left out",
    )


class CalendarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    periods: list[tuple[HourMinute, HourMinute]] = Field(
        min_length=1, description="Daily working periods [start, end), sorted"
    )
    weekend: list[Annotated[int, Field(ge=0, le=6)]] = Field(description="Monday is 0")
    holidays: list[IsoDate] = Field(
        description="The county's own rest days, on top of the State Council's notices "
        "(/calendar/notices) and winning over them"
    )
    makeup_workdays: list[IsoDate] = Field(
        description="The county's own working days on rest days, winning over the notices"
    )
    utc_offset_minutes: int = Field(ge=-1439, le=1439)


class DeadlinePolicyChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto_escalate_after_hours: float | None = Field(default=None, gt=0, le=2000)
    duplicate_radius_m: float | None = Field(default=None, gt=0, le=100_000)
    duplicate_window_hours: float | None = Field(default=None, gt=0, le=8760)


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "GET",
        "/catalogue",
        summary="The incident catalogue (current, or a given version)",
        tag="incident-setup",
        query=CatalogueQuery,
        response=Catalogue,
    )
    def get_catalogue(call: Call):
        query: CatalogueQuery = call.query
        return call.rpc(EVENTS, "catalogue", query.version, query.public_only)

    @api.operation(
        blueprint,
        "POST",
        "/catalogue",
        summary="Publish a new version of the catalogue",
        tag="incident-setup",
        body=NewCatalogue,
        response=Catalogue,
        status=201,
        roles=SETUP_WRITERS,
        idempotent=True,
        description="Earlier versions stay in force for the cases reported under them.",
    )
    def publish_catalogue(call: Call):
        document = call.body.model_dump(mode="json", by_alias=True)
        return call.rpc(EVENTS, "publish_catalogue", document)

    @api.operation(
        blueprint,
        "GET",
        "/departments",
        summary="Departments (of one centre, or all)",
        tag="incident-setup",
        query=DepartmentQuery,
        response=DepartmentList,
    )
    def list_departments(call: Call):
        return {"items": call.rpc(EVENTS, "departments", call.query.territory_code)}

    @api.operation(
        blueprint,
        "POST",
        "/departments",
        summary="Register (or rename) a department",
        tag="incident-setup",
        body=NewDepartment,
        response=Department,
        status=201,
        roles=SETUP_WRITERS,
        idempotent=True,
    )
    def register_department(call: Call):
        body: NewDepartment = call.body
        code = body.code or f"{body.territory_code}-{body.kind}"
        return call.rpc(
            EVENTS, "register_department", code, body.name, body.territory_code, body.kind
        )

    @api.operation(
        blueprint,
        "GET",
        "/calendar",
        summary="The working calendar deadlines are counted on",
        tag="incident-setup",
        response=WorkingCalendar,
    )
    def get_calendar(call: Call):
        return call.rpc(EVENTS, "calendar")

    @api.operation(
        blueprint,
        "POST",
        "/calendar",
        summary="Replace the working calendar's settings (holiday notices are kept per year)",
        tag="incident-setup",
        body=CalendarSettings,
        response=WorkingCalendar,
        roles=SETUP_WRITERS,
        idempotent=True,
    )
    def set_calendar(call: Call):
        return call.rpc(EVENTS, "set_calendar", call.body.model_dump(mode="json"))

    @api.operation(
        blueprint,
        "GET",
        "/deadline-policy",
        summary="Automatic escalation and duplicate detection settings",
        tag="incident-setup",
        response=DeadlinePolicy,
    )
    def get_policy(call: Call):
        return call.rpc(EVENTS, "policy")

    @api.operation(
        blueprint,
        "POST",
        "/deadline-policy",
        summary="Change deadline policy settings (those given)",
        tag="incident-setup",
        body=DeadlinePolicyChanges,
        response=DeadlinePolicy,
        roles=SETUP_WRITERS,
        idempotent=True,
    )
    def set_policy(call: Call):
        return call.rpc(EVENTS, "set_policy", call.body.model_dump(exclude_none=True))
