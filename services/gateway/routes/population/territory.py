"""/api/v1 territory and grids: the territory tree (imported from GeoJSON, or a node at a
time), its nodes and their statistics, locating a point's grid, and grid staff rosters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.api import Api, Call
from services.gateway.routes.population.shared import (
    ADMINISTRATORS,
    ROSTER_MANAGERS,
    SERVICE,
    TAG,
    GridCode,
    Reply,
    Request,
    TerritoryCode,
    as_items,
)

StaffRole = Literal["grid_leader", "supervisor", "full_time", "part_time"]


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


def register(api: Api, blueprint: Blueprint) -> None:
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
        return as_items(call.rpc(SERVICE, "territory_children", call.path["code"]))

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
        return as_items(call.rpc(SERVICE, "grid_staff", call.path["code"]))

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
        return as_items(call.rpc(SERVICE, "set_grid_staff", call.path["code"], staff))

    @api.operation(
        blueprint,
        "GET",
        "/staff/{person_id}/grids",
        summary="The grids a person serves (within the caller's scope)",
        tag=TAG,
        response=GridStaffList,
    )
    def grids_served_by(call: Call):
        return as_items(call.rpc(SERVICE, "grids_served_by", call.path["person_id"]))
