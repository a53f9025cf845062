"""/api/v1/incidents (the incident loop 闭环: report, one operation per action, queries) and
the county's incident setup (/catalogue, /departments, /calendar, /deadline-policy).

Every operation is a thin call to the events service, which owns the rules: who may do
what, in which state, at which version. Its errors come back over RPC and are mapped to
problem+json by services.gateway.problems (a stale version or an illegal transition is 409,
a rule broken is 422, a case outside the caller's scope is 404).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.territory import code_pattern
from services.gateway.api import Api, Call
from services.gateway.fields import IsoDate, IsoDateTime
from services.gateway.problems import ApiProblem
from services.gateway.routes.calendar import register_notices

EVENTS = "events"
MAX_TEXT = 2000
MAX_MEDIA = 20
MAX_PAGE = 200
DEFAULT_PAGE = 50

# The events service's vocabulary (the gateway does not import another service's code).
IncidentState = Literal[
    "reported",
    "accepted",
    "rejected",
    "registered",
    "dispatched",
    "handling",
    "returned",
    "awaiting_verification",
    "verified",
    "closed",
    "evaluated",
    "suspended",
]
WORKLIST_KINDS = (
    "my_grid",
    "verification",
    "centre_queue",
    "department_inbox",
    "overdue",
    "supervised",
)
Urgency = Literal["normal", "urgent"]
Level = Literal["village", "township", "county"]

# Who may ask for what (the events service decides the rest: territory, department, state).
REPORTERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
CENTRE = (roles.CENTRE_OPERATOR, roles.ADMIN)
DEPARTMENT = (roles.DEPARTMENT_HANDLER,)
GRID = (roles.GRID_WORKER, roles.GRID_LEADER)
SUPERVISORS = (roles.LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
SETUP_WRITERS = (roles.ADMIN,)

TERRITORY_CODE = code_pattern("county", "grid")  # county 6 digits, township 9, village 12, grid 15
CENTRE_CODE = code_pattern("county", "village")
BELOW_COUNTY_CENTRE = code_pattern("township", "village")
CATEGORY_CODE = r"^[0-9]{2}\.[0-9]{2}$"
DEPARTMENT_KIND = r"^[a-z][a-z0-9-]{1,40}$"

Text = Annotated[str, Field(max_length=MAX_TEXT)]
RequiredText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
MediaId = Annotated[str, Field(min_length=1, max_length=200)]
MediaIds = Annotated[
    list[MediaId],
    Field(max_length=MAX_MEDIA, description="Media ids (opaque until the media service lands)"),
]
Version = Annotated[
    int, Field(ge=1, description="The version of the case the decision was made on")
]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
StageHours = Annotated[float, Field(gt=0, le=2000, description="Working hours")]
HourMinute = Annotated[
    str, Field(pattern=r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local time")
]


# ----------------------------------------------------------------------------- responses


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
    possible_duplicates: list[DuplicateCandidate] = Field(
        description="Open cases of the same category nearby, reported recently"
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


# ----------------------------------------------------------------------------- requests


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


class AcceptCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class RejectCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: Literal["duplicate", "not_ours", "invalid"]
    duplicate_of: str | None = Field(
        default=None, min_length=1, max_length=200, description="With reason 'duplicate'"
    )
    comment: Text = ""


class RegisterCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class DispatchCommand(BaseModel):
    """Either to a department of the owning centre's level or down to a lower centre."""

    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    department_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="<centre code>-<department kind>, e.g. 530402001-police-station",
    )
    to_centre: str | None = Field(
        default=None,
        pattern=BELOW_COUNTY_CENTRE,
        description="A township or village centre below the owning centre",
    )
    comment: Text = ""


class SignCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class ReturnCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: RequiredText


class FeedbackCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    result: RequiredText
    media_ids: MediaIds = []


class VerifyCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    passed: bool
    comment: Text = Field(default="", description="Required when the verification fails")
    media_ids: MediaIds = []


class CloseCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class EvaluateCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    satisfaction: int = Field(ge=1, le=5)
    comment: Text = ""


class EscalateCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: Text = ""


class RequestExtensionCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    hours: float = Field(gt=0, le=2000, description="Working hours asked for")
    reason: RequiredText


class DecideExtensionCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    approve: bool
    comment: Text = ""


class SuspendCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: RequiredText


class ResumeCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class SuperviseCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    note: RequiredText
    new_due: IsoDateTime | None = Field(
        default=None, description="A new deadline for the current stage (ISO 8601 with offset)"
    )


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


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Action:
    path: str  # the last path segment
    name: str  # the events service's action
    body: type[BaseModel]
    summary: str
    roles: tuple[str, ...] | None


ACTIONS = (
    Action("accept", "accept", AcceptCommand, "Accept a reported case (受理)", CENTRE),
    Action("reject", "reject", RejectCommand, "Reject a reported case", CENTRE),
    Action("register", "register", RegisterCommand, "Register an accepted case (立案)", CENTRE),
    Action(
        "dispatch",
        "dispatch",
        DispatchCommand,
        "Dispatch to a department, or down to a lower centre (派遣)",
        CENTRE,
    ),
    Action("sign", "sign", SignCommand, "Sign for a dispatched case (签收)", DEPARTMENT),
    Action("return", "return", ReturnCommand, "Return a case that is not ours (退回)", DEPARTMENT),
    Action("feedback", "feedback", FeedbackCommand, "Report the work done (反馈)", DEPARTMENT),
    Action("verify", "verify", VerifyCommand, "Verify the work on site (核查)", GRID),
    Action("close", "close", CloseCommand, "Close a verified case (结案)", CENTRE),
    Action(
        "evaluate",
        "evaluate",
        EvaluateCommand,
        "Evaluate a closed case (评价): the reporter, or the centre for them",
        None,
    ),
    Action("escalate", "escalate", EscalateCommand, "Escalate to the centre above (上报)", CENTRE),
    Action(
        "request-extension",
        "request_extension",
        RequestExtensionCommand,
        "Ask for more working time (延期申请)",
        DEPARTMENT,
    ),
    Action(
        "decide-extension",
        "decide_extension",
        DecideExtensionCommand,
        "Approve or refuse a pending extension request",
        CENTRE,
    ),
    Action("suspend", "suspend", SuspendCommand, "Suspend a case: its clock stops (挂起)", CENTRE),
    Action("resume", "resume", ResumeCommand, "Resume a suspended case", CENTRE),
    Action(
        "supervise",
        "supervise",
        SuperviseCommand,
        "Supervise a case from above (督办), optionally setting a new deadline",
        SUPERVISORS,
    ),
)
ACTION_DESCRIPTION = (
    "Runs one step of the loop. 409 when the case is at another version (reload) or its "
    "state does not allow the step; 403 when the caller may not take it; a retry with the "
    "same Idempotency-Key returns the first answer."
)


def _register_action(api: Api, blueprint: Blueprint, action: Action) -> None:
    def act(call: Call):
        body = call.body
        fields = body.model_dump(mode="json", exclude={"expected_version"}, exclude_unset=True)
        return call.rpc(
            EVENTS,
            "act",
            call.path["incident_id"],
            action.name,
            body.expected_version,
            call.idempotency_key,
            fields,
        )

    act.__name__ = f"{action.name}_incident"
    api.operation(
        blueprint,
        "POST",
        f"/incidents/{{incident_id}}/{action.path}",
        summary=action.summary,
        tag="incidents",
        body=action.body,
        response=Incident,
        roles=action.roles,
        idempotent=True,
        description=ACTION_DESCRIPTION,
    )(act)


# ----------------------------------------------------------------------------- routes


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("incidents", __name__, url_prefix="/api/v1")
    api.tag("incidents", "The incident loop (闭环): report, act on, follow and find cases")
    api.tag(
        "incident-setup",
        "The county's catalogue of incidents, departments, working calendar, deadline policy",
    )
    _register_loop(api, blueprint)
    _register_queries(api, blueprint)
    _register_setup(api, blueprint)
    register_notices(api, blueprint, tag="incident-setup")
    return blueprint


def _register_loop(api: Api, blueprint: Blueprint) -> None:
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
        description="The grid is found from the location. A location outside the county is "
        "422. The answer lists possible duplicates nearby. A retry with the same "
        "Idempotency-Key answers the same case as it stands then.",
    )
    def report_incident(call: Call):
        report = call.body.model_dump(mode="json", exclude_none=True)
        return call.rpc(EVENTS, "report_incident", report, call.idempotency_key)

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

    for action in ACTIONS:
        _register_action(api, blueprint, action)


def _register_queries(api: Api, blueprint: Blueprint) -> None:
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


def _register_setup(api: Api, blueprint: Blueprint) -> None:
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
