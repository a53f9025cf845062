"""/api/v1/patrols: a grid worker's patrols (巡查) from the phone, offline first.

The phone makes each patrol's id (a UUID) so that what it records offline (incidents,
visits) can name the patrol before it is synced; every step is idempotent: `PUT` the
patrol, `PUT` each track piece by its sequence number (in any order, as often as the
connection needs), `POST .../finish`. The population service owns patrols: it checks
roles and territory scope (another worker's patrol, or one out of scope, is 404) and
reads the figures from the raw points.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, json
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.paging import DEFAULT_PAGE, MAX_PAGE
from gridwork_common.service_names import POPULATION
from services.gateway.api import Api, Call
from services.gateway.problems import ApiProblem

SERVICE = POPULATION
TAG = "patrols"
MAX_POINTS = 500
MAX_PIECE = 100_000
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"

PATROLLERS = (roles.GRID_WORKER, roles.GRID_LEADER)
READERS = (
    roles.GRID_WORKER,
    roles.GRID_LEADER,
    roles.CENTRE_OPERATOR,
    roles.LEADER,
    roles.ADMIN,
)
Flag = Literal["too_fast", "stationary"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewPatrol(Request):
    started_at: AwareDatetime = Field(description="when the patrol began, with a UTC offset")
    grid_code: str | None = Field(
        default=None, pattern=r"^\d{15}$", description="default: the grid worker's own grid"
    )


class TrackPoint(Request):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    at: AwareDatetime = Field(description="when the phone took the point, with a UTC offset")
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class TrackPiece(Request):
    points: list[TrackPoint] = Field(max_length=MAX_POINTS)


class Finish(Request):
    ended_at: AwareDatetime = Field(description="when the patrol ended, with a UTC offset")


class PatrolQuery(Request):
    worker: str | None = Field(
        default=None, min_length=1, max_length=200, description="a worker's id, or `me`"
    )
    grid: str | None = Field(default=None, pattern=r"^\d{15}$")
    period: str | None = Field(default=None, pattern=MONTH, description="a month, 2026-11")
    cursor: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class TrackQuery(Request):
    territory: str = Field(pattern=r"^\d{6}(\d{3}){0,3}$")
    period: str = Field(pattern=MONTH, description="a month, 2026-11")


class LineString(BaseModel):
    type: Literal["LineString"]
    coordinates: list[list[float]]


class Patrol(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    worker_id: str
    grid_code: str
    state: Literal["running", "finished"]
    started_at: str
    ended_at: str | None = None
    distance_m: float = Field(description="metres, great-circle over the raw points")
    duration_s: int | None = Field(default=None, description="seconds; none while running")
    grid_codes: list[str] = Field(description="the grids the track crossed")
    flags: list[Flag] = Field(description="integrity flags, judged once finished")
    incident_ids: list[str]
    visit_ids: list[str]
    track: LineString | None = Field(description="simplified for display (about 5 m)")
    point_count: int


class PatrolPage(BaseModel):
    items: list[Patrol]
    next_cursor: str | None


class PieceStored(BaseModel):
    patrol_id: str
    piece: int
    point_count: int


class TrackFeatures(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]]


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("patrols", __name__, url_prefix="/api/v1")
    api.tag(
        TAG,
        "Patrols (巡查): a grid worker's walks through their grid, tracked from the phone "
        "in pieces; distance, grids covered and integrity flags read from the track.",
    )

    @api.operation(
        blueprint,
        "PUT",
        "/patrols/{patrol_id}",
        summary="Start a patrol under the phone's own id (idempotent)",
        tag=TAG,
        body=NewPatrol,
        response=Patrol,
        status=201,
        roles=PATROLLERS,
        description="201 when created; the same body again answers 200 with the same "
        "patrol; a different body for an existing id is 409 naming the field.",
    )
    def start_patrol(call: Call):
        body: NewPatrol = call.body
        answer = call.rpc(
            SERVICE,
            "start_patrol",
            call.path["patrol_id"],
            body.started_at.isoformat(),
            body.grid_code,
        )
        status = 201 if answer["created"] else 200
        return Response(json.dumps(answer["patrol"]), status=status, mimetype="application/json")

    @api.operation(
        blueprint,
        "PUT",
        "/patrols/{patrol_id}/track/{piece}",
        summary="Store one piece of a patrol's raw track (idempotent per piece)",
        tag=TAG,
        body=TrackPiece,
        response=PieceStored,
        roles=PATROLLERS,
        description=f"`piece` is the sequence number 0, 1, 2, ... (at most {MAX_POINTS} "
        "points each). Pieces may arrive in any order and more than once; the same piece "
        "with other points is 409. A piece after the finish is kept and the figures "
        "recomputed.",
    )
    def put_track_piece(call: Call):
        piece = _piece(call.path["piece"])
        points = [
            {**point.model_dump(exclude_none=True), "at": point.at.isoformat()}
            for point in call.body.points
        ]
        return call.rpc(SERVICE, "put_patrol_track", call.path["patrol_id"], piece, points)

    @api.operation(
        blueprint,
        "POST",
        "/patrols/{patrol_id}/finish",
        summary="Finish a patrol (idempotent): distance, duration, grids, flags",
        tag=TAG,
        body=Finish,
        response=Patrol,
        roles=PATROLLERS,
        description="The same end again answers the same patrol; another end is 409. "
        "Announces `patrol.finished` once. No Idempotency-Key is needed: the patrol's id "
        "and its end make the request its own key (a key sent is ignored).",
    )
    def finish_patrol(call: Call):
        return call.rpc(
            SERVICE, "finish_patrol", call.path["patrol_id"], call.body.ended_at.isoformat()
        )

    @api.operation(
        blueprint,
        "GET",
        "/patrols",
        summary="Patrols in the caller's territory, filtered by worker, grid and month",
        tag=TAG,
        query=PatrolQuery,
        response=PatrolPage,
        roles=READERS,
    )
    def list_patrols(call: Call):
        query: PatrolQuery = call.query
        return call.rpc(
            SERVICE,
            "list_patrols",
            worker_id=query.worker,
            grid_code=query.grid,
            period=query.period,
            cursor=query.cursor,
            limit=query.limit,
        )

    @api.operation(
        blueprint,
        "GET",
        "/patrols/{patrol_id}",
        summary="A patrol with its simplified track",
        tag=TAG,
        response=Patrol,
        roles=READERS,
    )
    def get_patrol(call: Call):
        return call.rpc(SERVICE, "get_patrol", call.path["patrol_id"])

    @api.operation(
        blueprint,
        "GET",
        "/patrol-tracks",
        summary="A month's patrol tracks under a territory node, as GeoJSON (for maps)",
        tag=TAG,
        query=TrackQuery,
        response=TrackFeatures,
        roles=READERS,
        description="One LineString Feature per patrol with a track (at most 500, newest "
        "first), with worker, grid, state, times, distance and flags as properties.",
    )
    def patrol_tracks(call: Call):
        query: TrackQuery = call.query
        return call.rpc(SERVICE, "patrol_tracks", query.territory, query.period)

    return blueprint


def _piece(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_PIECE:
        raise ApiProblem(
            400,
            "Bad Request",
            f"piece: must be a whole number from 0 to {MAX_PIECE}",
            field="piece",
        )
    return int(text)
