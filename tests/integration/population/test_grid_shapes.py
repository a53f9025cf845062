"""grid_shapes: a subtree's grids simplified for a map, in scope, small enough to send
for a county of thousands of grids."""

import json
import math

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from shapely.geometry import shape

from gridwork_common.context import CallerContext
from services.population.domain.shapes import vertex_count
from tests.integration.population.conftest import ADMIN, OPERATOR_B
from tests.integration.population.territory_jobs import JOB_DEADLINE_S, import_territory_file
from tests.population_data import COUNTY, GRID_A1, GRID_A2, GRID_B1, VILLAGE_A, feature

BIG_TOWNSHIP = COUNTY + "009"
VILLAGES, GRIDS_PER_VILLAGE = 20, 60  # 1,200 grids
VERTICES = 160  # a surveyed boundary: many vertices per grid
CELL = 0.004  # degrees between grid centres
TOLERANCE_AT_ZOOM_12 = 360 / (256 * 2**12) / 2  # half a pixel, as the map page asks
BYTES_PER_GRID = 600  # the budget: 1,200 grids in well under a megabyte


def surveyed_ring(lon: float, lat: float, radius: float) -> list[list[float]]:
    ring = []
    for index in range(VERTICES):
        angle = 2 * math.pi * index / VERTICES
        r = radius * (1 + 0.03 * math.sin(angle * 23))
        ring.append([round(lon + r * math.cos(angle), 7), round(lat + r * math.sin(angle), 7)])
    return [*ring, ring[0]]


def big_township() -> dict:
    features = [feature(COUNTY, "红塔区"), feature(BIG_TOWNSHIP, "大营街道")]
    for v in range(VILLAGES):
        village = f"{BIG_TOWNSHIP}{v + 1:03d}"
        features.append(feature(village, f"第{v + 1}社区"))
        for g in range(GRIDS_PER_VILLAGE):
            centre = (103.0 + g * CELL, 25.0 + v * CELL)
            polygon = {"type": "Polygon", "coordinates": [surveyed_ring(*centre, CELL * 0.4)]}
            features.append(feature(f"{village}{g + 1:03d}", f"第{g + 1}网格", polygon))
    return {"type": "FeatureCollection", "features": features}


def test_a_township_of_many_grids_is_sent_simplified_under_a_byte_budget(
    config, population_container
):
    # Right after the import the service's outline timer builds the township's outlines
    # at every zoom in the same process: on a loaded machine a call may wait behind it
    # longer than the usual 30 s, which is not what this test is about.
    proxy = ClusterRpcProxy(config, context_data=ADMIN.to_context_data(), timeout=JOB_DEADLINE_S)
    admin = proxy.start().population
    try:
        check_big_township(admin)
    finally:
        proxy.stop()


def check_big_township(admin):
    collection = big_township()
    # Through an import job, as a county's thousands of grids are: no RPC waits on it.
    job = import_territory_file(admin, collection)
    assert job["status"] == "finished", job
    assert job["counts"]["created"] == job["total_rows"] == len(collection["features"])
    stored = {
        f["properties"]["code"]: f["geometry"] for f in collection["features"] if f["geometry"]
    }

    shapes = admin.grid_shapes(BIG_TOWNSHIP, TOLERANCE_AT_ZOOM_12)

    assert len(shapes) == VILLAGES * GRIDS_PER_VILLAGE == len(stored)
    assert {grid["code"] for grid in shapes} == set(stored)
    sent = len(json.dumps(shapes, ensure_ascii=False).encode())
    assert sent < BYTES_PER_GRID * len(shapes), sent
    assert sent < len(json.dumps(list(stored.values())).encode()) / 5
    sent_vertices = sum(vertex_count(grid["geometry"]) for grid in shapes)
    assert sent_vertices < sum(vertex_count(g) for g in stored.values()) / 5
    for grid in shapes:
        drawn, surveyed = shape(grid["geometry"]), shape(stored[grid["code"]])
        assert drawn.is_valid and vertex_count(grid["geometry"]) >= 4, grid["code"]
        assert drawn.symmetric_difference(surveyed).area < 0.1 * surveyed.area, grid["code"]

    full = admin.grid_shapes(BIG_TOWNSHIP + "001", 0)
    assert [vertex_count(grid["geometry"]) for grid in full] == [VERTICES + 1] * GRIDS_PER_VILLAGE


def test_grid_shapes_keep_to_the_callers_scope(county, as_user):
    assert [g["code"] for g in county.grid_shapes(COUNTY, 0.0001)] == [GRID_A1, GRID_A2, GRID_B1]
    assert [g["code"] for g in county.grid_shapes(VILLAGE_A)] == [GRID_A1, GRID_A2]
    operator_b = as_user(OPERATOR_B)
    assert [g["code"] for g in operator_b.grid_shapes(OPERATOR_B.scope)] == [GRID_B1]
    for code in (COUNTY, VILLAGE_A, GRID_A1):
        with pytest.raises(RemoteError) as refused:
            operator_b.grid_shapes(code)
        assert refused.value.exc_type == "NotFound"
    nobody = as_user(CallerContext(user_id="x", roles=("centre_operator",), scope=None))
    with pytest.raises(RemoteError) as refused:
        nobody.grid_shapes(COUNTY)
    assert refused.value.exc_type == "NotFound"
    with pytest.raises(RemoteError) as refused:
        county.grid_shapes(COUNTY, 1)
    assert refused.value.exc_type == "InvalidInput"
    assert refused.value.value.startswith("tolerance")
