"""/api/v1 population: the territory tree and grids, residents, houses, households, legal
entities, special and vulnerable groups, visits, the access audit, bulk imports and roster
matching.

Every operation calls the population service in the caller's name: the service checks
roles and territory scope (a record outside the caller's scope is answered 404, the same
as one that does not exist). The gateway adds only the obvious coarse role checks
(administration, imports, the access audit) and validates the shape of the input.

Conventions:
- Lists that can grow are pages, `{"items": [...], "next_cursor": str | null}`, read with
  `cursor` (the previous page's `next_cursor`) and `limit` (1..200, default 50).
- Residents are read masked. `?reveal=id_number,phone` asks for full values and needs the
  header `X-Reveal-Purpose` stating why; every reveal is written to the access audit.
- Changing a resident (`PATCH /residents/{id}`, `move`, `deregister`) takes the version
  read, `expected_version`, in the JSON body (no `If-Match`); a stale one is a 409.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.territory import code_pattern, describe
from services.gateway.api import Api, Call
from services.gateway.fields import IsoDateTimeFrom2000
from services.gateway.problems import ApiProblem

SERVICE = "population"
TAG = "population"
MAX_PAGE = 200
DEFAULT_PAGE = 50
REVEAL_PURPOSE_HEADER = "X-Reveal-Purpose"
MAX_PURPOSE_LENGTH = 200
IMPORT_FILE_FIELD = "file"
EARLIEST_VISIT = datetime(2000, 1, 1, tzinfo=UTC)

# The roles the gateway checks itself (the service checks every other operation).
ADMINISTRATORS = (roles.ADMIN,)
ROSTER_MANAGERS = (roles.CENTRE_OPERATOR, roles.ADMIN)
IMPORTERS = (roles.CENTRE_OPERATOR, roles.ADMIN)
AUDITORS = (roles.LEADER, roles.ADMIN, roles.CENTRE_OPERATOR)

# Territory codes: county 6 digits, then township, village, grid +3 each, building +5.
TerritoryCode = Annotated[str, Field(pattern=code_pattern(), description=describe())]
GridCode = Annotated[str, Field(pattern=code_pattern("grid", "grid"))]
BuildingCode = Annotated[str, Field(pattern=code_pattern("building", "building"))]
RecordId = Annotated[str, Field(min_length=1, max_length=64)]
Cursor = Annotated[str, Field(min_length=1, max_length=200)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE)]
Version = Annotated[int, Field(strict=True, ge=1)]
RiskLevel = Literal["high", "medium", "low"]
# The service owns the list of groups (and answers 422 naming `group` with it).
GroupName = Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]
StaffRole = Literal["grid_leader", "supervisor", "full_time", "part_time"]
Relation = Literal[
    "spouse", "child", "parent", "grandchild", "grandparent", "sibling", "child_in_law", "other"
]
ResidentStatus = Literal["active", "moved_out", "deregistered"]
ImportKind = Literal["residents", "houses", "entities", "territory"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- territory and grids
Position = Annotated[
    list[float], Field(min_length=2, max_length=3, description="[longitude, latitude]")
]
LinearRing = Annotated[list[Position], Field(min_length=4, description="closed: last = first")]


class PolygonGeometry(Request):
    type: Literal["Polygon"]
    coordinates: list[LinearRing] = Field(min_length=1, description="outer ring, then holes")
    bbox: list[float] | None = None


class MultiPolygonGeometry(Request):
    type: Literal["MultiPolygon"]
    coordinates: list[Annotated[list[LinearRing], Field(min_length=1)]] = Field(min_length=1)
    bbox: list[float] | None = None


TerritoryGeometry = Annotated[PolygonGeometry | MultiPolygonGeometry, Field(discriminator="type")]


class TerritoryFeatureProperties(BaseModel):
    """`code` and `name` are read; other attributes of a GIS export are ignored."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=100)


class TerritoryFeature(Request):
    type: Literal["Feature"]
    properties: TerritoryFeatureProperties
    geometry: TerritoryGeometry | None = Field(
        default=None, description="required for grids, absent for buildings"
    )
    id: str | int | None = None
    bbox: list[float] | None = None


class TerritoryFeatureCollection(Request):
    type: Literal["FeatureCollection"]
    features: list[TerritoryFeature] = Field(min_length=1, max_length=20000)
    name: str | None = Field(default=None, max_length=200)
    crs: dict[str, Any] | None = None
    bbox: list[float] | None = None


class NewTerritoryNode(Request):
    code: TerritoryCode
    name: str = Field(min_length=1, max_length=100)
    geometry: TerritoryGeometry | None = None


class TerritoryImported(Reply):
    created: int
    updated: int
    unchanged: int


class TerritoryNode(Reply):
    code: str
    name: str
    level: Literal["county", "township", "village", "grid", "building"]
    parent: str | None = None
    path: list[str]
    geometry: dict[str, Any] | None = None


class TerritoryNodeList(Reply):
    items: list[TerritoryNode]


class TerritoryStatistics(Reply):
    code: str
    grids: int
    households: int
    residents: int
    residents_by_residence_type: dict[str, int]
    group_members: dict[str, dict[str, int]] | None = Field(
        default=None, description="{group: {risk level: count}}, for those who see groups"
    )


class TerritoryPath(Request):
    code: TerritoryCode


class GridPath(Request):
    code: GridCode


class LocateQuery(Request):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class LocatedGrid(Reply):
    code: str
    name: str


class PathNode(Reply):
    code: str
    name: str | None = None
    level: str


class GridLocation(Reply):
    grid: LocatedGrid
    path: list[PathNode]


class StaffMember(Request):
    person_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=50)
    role: StaffRole


class StaffRoster(Request):
    staff: list[StaffMember] = Field(
        max_length=100,
        description="the whole roster: 1 grid leader, 1 supervisor, 1 full-time, N part-time",
    )


class GridStaff(Reply):
    person_id: str
    name: str
    role: StaffRole
    grid_code: str | None = None


class GridStaffList(Reply):
    items: list[GridStaff]


# ---------------------------------------------------------------- residents
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


# ---------------------------------------------------------------- houses, households, entities
class NewHouse(Request):
    building_code: BuildingCode
    room: str = Field(min_length=1, max_length=20)
    address: str | None = Field(default=None, max_length=200)
    rental_status: Literal["owner_occupied", "rented", "vacant"] = "owner_occupied"
    owner_resident_id: RecordId | None = None


class House(Reply):
    id: str
    building_code: str
    grid_code: str
    room: str
    address: str | None = None
    rental_status: Literal["owner_occupied", "rented", "vacant"]
    owner_resident_id: str | None = None
    tenant_ids: list[str]


class PlaceListQuery(Request):
    code: TerritoryCode
    cursor: Cursor | None = None
    limit: Limit = DEFAULT_PAGE


class HousePage(Reply):
    items: list[House]
    next_cursor: str | None


class Tenants(Request):
    tenant_ids: list[RecordId] = Field(
        max_length=100, description="the whole list of tenants (resident ids)"
    )


class NewHousehold(Request):
    house_id: RecordId
    head_resident_id: RecordId


class NewHouseholdMember(Request):
    resident_id: RecordId
    relation: Relation


class HouseholdMember(Reply):
    resident_id: str
    name: str
    relation: str | None = None


class Household(Reply):
    id: str
    house_id: str
    grid_code: str
    head_resident_id: str
    members: list[HouseholdMember]


class NewEntity(Request):
    credit_code: str = Field(min_length=1, max_length=18, description="unified social credit code")
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=50)
    grid_code: GridCode
    address: str | None = Field(default=None, max_length=200)
    legal_representative: str | None = Field(default=None, max_length=50)


class Entity(Reply):
    credit_code: str
    name: str
    type: str
    address: str | None = None
    legal_representative: str | None = None
    grid_code: str


class EntityPage(Reply):
    items: list[Entity]
    next_cursor: str | None


# ---------------------------------------------------------------- groups and visits
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


# ---------------------------------------------------------------- access audit
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


# ---------------------------------------------------------------- imports and roster matching
class ImportQuery(Request):
    kind: ImportKind


class ImportCounts(Reply):
    rows: int
    created: int
    updated: int
    unchanged: int
    failed: int


class ImportJob(Reply):
    id: str
    kind: ImportKind
    filename: str
    status: Literal["queued", "running", "finished", "failed"]
    columns: list[str]
    ignored_columns: list[str]
    counts: ImportCounts
    created_at: str
    failure: str | None = None
    finished_at: str | None = None


class RosterRow(Request):
    id_number: str | None = Field(
        default=None, max_length=32, description="a row without a valid one is reported invalid"
    )
    name: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=40)


class GroupTag(Request):
    group: GroupName
    risk_level: RiskLevel = "low"
    responsible_worker_id: RecordId
    note: str | None = Field(default=None, max_length=500)


class RosterMatchRequest(Request):
    rows: list[RosterRow] = Field(min_length=1, max_length=10000)
    apply_group: GroupTag | None = Field(
        default=None, description="flag every matched resident with this group"
    )


class RosterMatch(Reply):
    row: int
    resident_id: str
    grid_code: str


class RosterNotFound(Reply):
    row: int
    name: str | None = None


class RosterFieldDifference(Reply):
    field: str
    ours: str | None = None
    theirs: str | None = None


class RosterMismatch(RosterMatch):
    fields: list[RosterFieldDifference]


class RosterInvalidRow(Reply):
    row: int
    field: str
    reason: str


class RosterMatchResult(Reply):
    matched: list[RosterMatch]
    not_found: list[RosterNotFound]
    mismatches: list[RosterMismatch]
    invalid: list[RosterInvalidRow]


# ---------------------------------------------------------------- helpers
def _page_args(query) -> dict:
    return {"cursor": query.cursor, "limit": query.limit}


def _reveal_purpose(required: bool) -> str | None:
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


def _uploaded_file() -> tuple[str, bytes]:
    upload = request.files.get(IMPORT_FILE_FIELD)
    if upload is None:
        raise ApiProblem(
            400,
            "Bad Request",
            f"{IMPORT_FILE_FIELD}: upload the file as multipart/form-data field "
            f"'{IMPORT_FILE_FIELD}'",
            field=IMPORT_FILE_FIELD,
        )
    filename = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not filename:
        raise ApiProblem(
            400, "Bad Request", f"{IMPORT_FILE_FIELD}: needs a filename", field=IMPORT_FILE_FIELD
        )
    content = upload.read()
    if not content:
        raise ApiProblem(
            400, "Bad Request", f"{IMPORT_FILE_FIELD}: the file is empty", field=IMPORT_FILE_FIELD
        )
    return filename[-200:], content  # the end keeps the extension


# OpenAPI for what the views handle themselves (the upload, the CSV download).
IMPORT_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [IMPORT_FILE_FIELD],
                "properties": {
                    IMPORT_FILE_FIELD: {
                        "type": "string",
                        "contentMediaType": "application/octet-stream",
                        "minLength": 1,
                        "description": (
                            "a .csv (UTF-8 or GB18030) or .xlsx file; a .geojson or "
                            ".json FeatureCollection for kind=territory"
                        ),
                    }
                },
            },
        }
    },
}
ERROR_REPORT_RESPONSE = {
    "description": "UTF-8 CSV (with a BOM for Excel): row, field, reason",
    "headers": {
        "Content-Disposition": {
            "schema": {"type": "string"},
            "description": "attachment; filename=<the uploaded name>.errors.csv",
        }
    },
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


def _content_disposition(filename: str) -> str:
    """An attachment named `filename`: an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _items(result: list) -> dict:
    return {"items": result}


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


# ---------------------------------------------------------------- operations
def register(api: Api) -> Blueprint:
    blueprint = Blueprint("population", __name__, url_prefix="/api/v1")
    api.tag(
        TAG,
        "Territory and grids, residents, houses, households, legal entities, special and "
        "vulnerable groups, visits, the access audit, bulk imports and roster matching. "
        "Records outside the caller's territory scope are answered 404.",
    )
    _territory(api, blueprint)
    _residents(api, blueprint)
    _places(api, blueprint)
    _groups(api, blueprint)
    _imports(api, blueprint)
    return blueprint


def _territory(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/territories/import",
        summary="Import the territory tree (GeoJSON FeatureCollection)",
        description=(
            "Nodes are upserted by code; grid polygons must not overlap. Answers once "
            "stored: for a county's thousands of grids upload the file to "
            "POST /imports?kind=territory instead (a job with progress)."
        ),
        tag=TAG,
        body=TerritoryFeatureCollection,
        response=TerritoryImported,
        roles=ADMINISTRATORS,
        idempotent=True,
    )
    def import_territory(call: Call):
        body: TerritoryFeatureCollection = call.body
        collection = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": feature.properties.model_dump(),
                    "geometry": (
                        feature.geometry.model_dump(exclude_none=True)
                        if feature.geometry is not None
                        else None
                    ),
                }
                for feature in body.features
            ],
        }
        return call.rpc(SERVICE, "import_territory", collection)

    @api.operation(
        blueprint,
        "POST",
        "/territories",
        summary="Add or replace one territory node",
        tag=TAG,
        body=NewTerritoryNode,
        response=TerritoryImported,
        roles=ADMINISTRATORS,
        idempotent=True,
    )
    def add_territory_node(call: Call):
        body: NewTerritoryNode = call.body
        geometry = body.geometry.model_dump(exclude_none=True) if body.geometry else None
        return call.rpc(SERVICE, "add_territory_node", body.code, body.name, geometry)

    @api.operation(
        blueprint,
        "GET",
        "/territories/{code}",
        summary="A territory node (with its polygon)",
        tag=TAG,
        response=TerritoryNode,
        path_params=TerritoryPath,
    )
    def get_territory(call: Call):
        return call.rpc(SERVICE, "get_territory", call.path["code"])

    @api.operation(
        blueprint,
        "GET",
        "/territories/{code}/children",
        summary="The nodes directly below a territory node",
        tag=TAG,
        response=TerritoryNodeList,
        path_params=TerritoryPath,
    )
    def territory_children(call: Call):
        return _items(call.rpc(SERVICE, "territory_children", call.path["code"]))

    @api.operation(
        blueprint,
        "GET",
        "/territories/{code}/statistics",
        summary="Counts over a territory node's subtree",
        tag=TAG,
        response=TerritoryStatistics,
        path_params=TerritoryPath,
    )
    def territory_statistics(call: Call):
        return call.rpc(SERVICE, "statistics", call.path["code"])

    @api.operation(
        blueprint,
        "GET",
        "/locate",
        summary="The grid containing a point (and its ancestors)",
        description="422 when no grid of the county contains the point.",
        tag=TAG,
        query=LocateQuery,
        response=GridLocation,
    )
    def locate(call: Call):
        return call.rpc(SERVICE, "locate", call.query.lon, call.query.lat)

    @api.operation(
        blueprint,
        "GET",
        "/grids/{code}/staff",
        summary="A grid's staff roster",
        tag=TAG,
        response=GridStaffList,
        path_params=GridPath,
    )
    def grid_staff(call: Call):
        return _items(call.rpc(SERVICE, "grid_staff", call.path["code"]))

    @api.operation(
        blueprint,
        "POST",
        "/grids/{code}/staff",
        summary="Replace a grid's staff roster (1 leader + 1 supervisor + 1 full-time + N)",
        tag=TAG,
        body=StaffRoster,
        response=GridStaffList,
        roles=ROSTER_MANAGERS,
        idempotent=True,
        path_params=GridPath,
    )
    def set_grid_staff(call: Call):
        staff = [member.model_dump() for member in call.body.staff]
        return _items(call.rpc(SERVICE, "set_grid_staff", call.path["code"], staff))

    @api.operation(
        blueprint,
        "GET",
        "/staff/{person_id}/grids",
        summary="The grids a person serves (within the caller's scope)",
        tag=TAG,
        response=GridStaffList,
    )
    def grids_served_by(call: Call):
        return _items(call.rpc(SERVICE, "grids_served_by", call.path["person_id"]))


def _residents(api: Api, blueprint: Blueprint) -> None:
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
            SERVICE, "list_residents", query.code, status=query.status, **_page_args(query)
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
        return _items(found)

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
        purpose = _reveal_purpose(required=bool(call.query.reveal))
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
        return _items(call.rpc(SERVICE, "resident_history", call.path["resident_id"]))


def _places(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/houses",
        summary="Record a house or room (its id is building code + room)",
        tag=TAG,
        body=NewHouse,
        response=House,
        status=201,
        idempotent=True,
    )
    def add_house(call: Call):
        return call.rpc(SERVICE, "add_house", call.body.model_dump())

    @api.operation(
        blueprint,
        "GET",
        "/houses",
        summary="Houses under a territory node, a page at a time",
        tag=TAG,
        query=PlaceListQuery,
        response=HousePage,
    )
    def list_houses(call: Call):
        return call.rpc(SERVICE, "list_houses", call.query.code, **_page_args(call.query))

    @api.operation(
        blueprint, "GET", "/houses/{house_id}", summary="A house", tag=TAG, response=House
    )
    def get_house(call: Call):
        return call.rpc(SERVICE, "get_house", call.path["house_id"])

    @api.operation(
        blueprint,
        "POST",
        "/houses/{house_id}/tenants",
        summary="Replace the tenants of a rented house",
        tag=TAG,
        body=Tenants,
        response=House,
        idempotent=True,
    )
    def set_tenants(call: Call):
        return call.rpc(SERVICE, "set_tenants", call.path["house_id"], call.body.tenant_ids)

    @api.operation(
        blueprint,
        "POST",
        "/households",
        summary="Create a household in a house, headed by a resident",
        tag=TAG,
        body=NewHousehold,
        response=Household,
        status=201,
        idempotent=True,
    )
    def create_household(call: Call):
        body: NewHousehold = call.body
        return call.rpc(SERVICE, "create_household", body.house_id, body.head_resident_id)

    @api.operation(
        blueprint,
        "GET",
        "/households/{household_id}",
        summary="A household and its members",
        tag=TAG,
        response=Household,
    )
    def get_household(call: Call):
        return call.rpc(SERVICE, "get_household", call.path["household_id"])

    @api.operation(
        blueprint,
        "POST",
        "/households/{household_id}/members",
        summary="Add a resident to a household",
        tag=TAG,
        body=NewHouseholdMember,
        response=Household,
        idempotent=True,
    )
    def add_household_member(call: Call):
        body: NewHouseholdMember = call.body
        return call.rpc(
            SERVICE,
            "add_household_member",
            call.path["household_id"],
            body.resident_id,
            body.relation,
        )

    @api.operation(
        blueprint,
        "POST",
        "/entities",
        summary="Register (or update) a legal entity by its credit code",
        tag=TAG,
        body=NewEntity,
        response=Entity,
        status=201,
        idempotent=True,
    )
    def register_entity(call: Call):
        return call.rpc(SERVICE, "register_entity", call.body.model_dump(exclude_none=True))

    @api.operation(
        blueprint,
        "GET",
        "/entities",
        summary="Legal entities under a territory node, a page at a time",
        tag=TAG,
        query=PlaceListQuery,
        response=EntityPage,
    )
    def list_entities(call: Call):
        return call.rpc(SERVICE, "list_entities", call.query.code, **_page_args(call.query))

    @api.operation(
        blueprint,
        "GET",
        "/entities/{credit_code}",
        summary="A legal entity",
        tag=TAG,
        response=Entity,
    )
    def get_entity(call: Call):
        return call.rpc(SERVICE, "get_entity", call.path["credit_code"])


def _groups(api: Api, blueprint: Blueprint) -> None:
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
            **_page_args(query),
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
        return _items(call.rpc(SERVICE, "visits_of", call.path["membership_id"]))

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
            **_page_args(query),
        )


def _imports(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/imports",
        summary="Upload a CSV or XLSX file, or a territory's GeoJSON, to import (a job)",
        description=(
            "multipart/form-data with the file in field `file`. The header row is checked "
            "before the job is accepted (202); rows are imported in the background: poll "
            "GET /imports/{job_id}. `kind=territory` (administrators) takes a GeoJSON "
            "FeatureCollection (.geojson/.json) as POST /territories/import does, for "
            "territories of thousands of grids: `counts` grows batch by batch up to "
            "`total_rows` features; overlaps or a bad polygon fail the job, `failure` "
            "naming the field and the codes."
        ),
        tag=TAG,
        query=ImportQuery,
        response=ImportJob,
        status=202,
        roles=IMPORTERS,
        idempotent=True,
        raw_body=IMPORT_UPLOAD,
    )
    def start_import(call: Call):
        filename, content = _uploaded_file()
        encoded = base64.b64encode(content).decode("ascii")
        return call.rpc(
            SERVICE, "start_import", call.query.kind, filename, encoded, call.idempotency_key
        )

    @api.operation(
        blueprint,
        "GET",
        "/imports/{job_id}",
        summary="An import job: status and counts",
        description="Visible to whoever uploaded the file and to administrators.",
        tag=TAG,
        response=ImportJob,
    )
    def import_job(call: Call):
        return call.rpc(SERVICE, "import_job", call.path["job_id"])

    @api.operation(
        blueprint,
        "GET",
        "/imports/{job_id}/errors.csv",
        summary="An import job's rejected rows as a CSV download (row, field, reason)",
        tag=TAG,
        raw_response=ERROR_REPORT_RESPONSE,
    )
    def import_errors(call: Call):
        report = call.rpc(SERVICE, "import_error_report", call.path["job_id"])
        try:
            content = base64.b64decode(report["content_base64"], validate=True)
        except (binascii.Error, KeyError, TypeError) as exc:
            raise RuntimeError("the population service sent an unreadable report") from exc
        response = Response(content, status=200, content_type=report["content_type"])
        response.headers["Content-Disposition"] = _content_disposition(report["filename"])
        return response

    @api.operation(
        blueprint,
        "POST",
        "/roster-matches",
        summary="Match a department's roster against the residents in scope",
        description=(
            "Rows are matched by ID number: matched, not found, field mismatches and invalid "
            "rows. With apply_group, every matched resident is flagged with that group."
        ),
        tag=TAG,
        body=RosterMatchRequest,
        response=RosterMatchResult,
        idempotent=True,
    )
    def match_roster(call: Call):
        body: RosterMatchRequest = call.body
        rows = [row.model_dump(exclude_none=True) for row in body.rows]
        apply_group = body.apply_group.model_dump() if body.apply_group else None
        return call.rpc(SERVICE, "match_roster", rows, apply_group=apply_group)
