"""The map with Yuxi's count of grids: a county of 5,000 grids, stored once for this
module as the population service's import stores it (store_territory says why not
through the import RPC itself).
Zoomed out the browser gets the villages' outlines, zoomed into a village its grids, all
drawn on a canvas, every answer under a byte budget; clicking a grid shows its panel."""

from __future__ import annotations

import math

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from pymongo import ReplaceOne

from gridwork_common.context import CallerContext
from gridwork_common.mongo import new_client
from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from services.population import store as population_store
from services.population.domain.territory import nodes_from_feature_collection
from services.population.outline_store import OutlineStore
from tests.ui.conftest import assert_accessible, screenshot, sign_in
from tests.ui.maps import READY, click_at, drawn, open_map

pytestmark = pytest.mark.ui

COUNTY = "530425"  # 易门县, beside the demo county: its own users, nothing shared
TOWNSHIPS, VILLAGES, GRIDS = 10, 25, 20  # 5,000 grids
CELL = 0.004  # degrees: grids of about 400 m
STEPS = 8  # vertices per edge: 33 per grid, as a survey would give more
JITTER = CELL * 0.02  # about 8 m: what the zoomed-out outlines may drop
WEST, SOUTH = 102.0, 24.5
# What one answer may weigh, whatever the county's size: the server sends at most
# 1,000 polygons at half a pixel's precision (the county's survey is about 4 MB).
SHAPES_BYTES = 300_000
CASES_BYTES = 50_000
USER = "big-county-centre"
PASSWORD = "a long enough password 5000"


def lattice_point(i: int, j: int, along: str) -> list[float]:
    """A vertex on the lattice of cell edges, shared by both cells of an edge: (i, j) in
    STEPS-ths of a cell along x for horizontal edges (`along="x"`), along y otherwise;
    corners are exact, the others wobble a little."""
    if along == "x":
        lon, lat = WEST + i / STEPS * CELL, SOUTH + j * CELL
        if i % STEPS:
            lat += JITTER * math.sin(i * 1.3 + j * 0.7)
    else:
        lon, lat = WEST + i * CELL, SOUTH + j / STEPS * CELL
        if j % STEPS:
            lon += JITTER * math.sin(j * 1.1 + i * 0.9)
    return [round(lon, 7), round(lat, 7)]


def cell(x: int, y: int) -> dict:
    ring = [lattice_point(x * STEPS + k, y, "x") for k in range(STEPS)]
    ring += [lattice_point(x + 1, y * STEPS + k, "y") for k in range(STEPS)]
    ring += [lattice_point((x + 1) * STEPS - k, y + 1, "x") for k in range(STEPS)]
    ring += [lattice_point(x, (y + 1) * STEPS - k, "y") for k in range(STEPS)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def position(township: int, village: int, grid: int) -> tuple[int, int]:
    """The cell of a grid: townships 5 by 2, villages 5 by 5 in each, grids 5 by 4."""
    x = (township % 5) * 25 + (village % 5) * 5 + grid % 5
    y = (township // 5) * 20 + (village // 5) * 4 + grid // 5
    return x, y


def big_county() -> dict:
    def node(code, name, geometry=None):
        return {"type": "Feature", "properties": {"code": code, "name": name}, "geometry": geometry}

    features = [node(COUNTY, "易门县")]
    for t in range(TOWNSHIPS):
        township = f"{COUNTY}{t + 1:03d}"
        features.append(node(township, f"第{t + 1}镇"))
        for v in range(VILLAGES):
            village = f"{township}{v + 1:03d}"
            features.append(node(village, f"第{t + 1}镇第{v + 1}村"))
            for g in range(GRIDS):
                geometry = cell(*position(t, v, g))
                name = f"第{v + 1}村第{g + 1}网格"
                features.append(node(f"{village}{g + 1:03d}", name, geometry))
    return {"type": "FeatureCollection", "features": features}


def centre(township: int, village: int, grid: int) -> tuple[float, float]:
    x, y = position(township, village, grid)
    return WEST + (x + 0.5) * CELL, SOUTH + (y + 0.5) * CELL


def store_territory(settings, collection: dict, clock) -> None:
    """The county's nodes written straight into the population service's territory
    collection, as its import stores them (the same validated documents), and the
    territory version raised as an import raises it. The real import (validation, the
    STRtree overlap check, 250 nodes per transaction with their events) of this county
    takes about 15 s against 6 s for this on the loaded 2-core machine, and the import
    job's timer adds its poll: this module's setup, with the stack and the outlines of
    every zoom, already nears the 300 s test timeout there. tests/integration/population
    imports 1,200 grids through the job; bench/territory.py measures 5,000."""
    nodes = nodes_from_feature_collection(collection)
    client = new_client(settings, app_name="gridwork-tests")
    try:
        db = client[settings.database_name("population")]
        db[population_store.TERRITORY].bulk_write(
            [ReplaceOne({"_id": n.code}, n.document(), upsert=True) for n in nodes]
        )
        OutlineStore(db).territory_changed(clock())
    finally:
        client.close()


@pytest.fixture(scope="module")
def county(ui_stack):
    """The county stored once for the module, its outlines built at every zoom, a roster
    on one grid, and its centre's operator."""
    settings = ui_stack["settings"]
    store_territory(settings, big_county(), ui_stack["clock"])
    admin = CallerContext(user_id="map-scale-test", roles=("admin",), scope=COUNTY)
    grid = f"{COUNTY}003007012"
    staff = [
        {"person_id": "big-gl", "name": "易网格长", "role": "grid_leader"},
        {"person_id": "big-ft", "name": "易专职", "role": "full_time"},
    ]
    with ClusterRpcProxy(
        settings.nameko_config(), context_data=admin.to_context_data(), timeout=240
    ) as rpc:
        rpc.population.set_grid_staff(grid, staff)
        # What the population timer does once the territory is quiet, done now.
        built = rpc.population.build_map_outlines()
        assert rpc.population.statistics(COUNTY)["grids"] == TOWNSHIPS * VILLAGES * GRIDS
    assert built["version"] >= 1
    Identity(gateway_db(settings), settings).create_user(
        USER, PASSWORD, ["centre_operator"], COUNTY, None, "易门县指挥中心"
    )
    return {"grid": grid, "staff": staff}


class Sizes:
    """The bytes of each answer of the map's two JSON routes."""

    def __init__(self, page):
        self.shapes: list[tuple[str, int]] = []
        self.cases: list[int] = []
        page.on("response", self.record)

    def record(self, response):
        if "/map/shapes.geojson" in response.url:
            self.shapes.append((response.url, len(response.body())))
        elif "/map/cases.json" in response.url:
            self.cases.append(len(response.body()))


@pytest.mark.parametrize("viewport", ["desktop"])
def test_five_thousand_grids_are_drawn_as_outlines_then_grids_on_a_canvas(page, ui_stack, county):
    sizes = Sizes(page)
    sign_in(page, ui_stack, USER, PASSWORD)
    open_map(page, ui_stack)

    # The whole county is in view: 5,000 grids are over the budget, 250 villages are not.
    assert page.get_attribute("#grid-map", "data-level") == "village"
    villages = drawn(page)
    assert len(villages) == TOWNSHIPS * VILLAGES
    assert all(len(code) == 12 and code.startswith(COUNTY) for code in villages)
    assert page.inner_text("#legend-none") == str(TOWNSHIPS * VILLAGES * GRIDS)
    assert page.locator("#grid-map canvas").count() >= 1
    assert page.locator("#grid-map svg path:not(.patrol-track)").count() == 0
    assert "第1镇第1村 · 530425001001 · 20 个网格" in page.inner_text("#grid-picker")
    assert_accessible(page)
    screenshot(page, "map-5000-grids")

    # Into a village (from the list, as a keyboard user would): its grids are drawn.
    village = county["grid"][:12]
    page.select_option("#grid-picker", village)
    page.wait_for_function(
        "() => document.querySelector('#grid-map').dataset.level === 'grid'"
        " && document.querySelector('#grid-map.grid-map--ready')",
        timeout=20_000,
    )
    grids = drawn(page)
    assert {f"{village}{g + 1:03d}" for g in range(GRIDS)} <= set(grids)
    assert len(grids) <= 1000  # the budget, not the county

    # Click a grid on the canvas: its panel.
    assert click_at(page, *centre(2, 6, 11)) == "CANVAS"
    page.wait_for_function(
        "code => document.querySelector('#panel-code')?.textContent === code",
        arg=county["grid"],
        timeout=10_000,
    )
    panel = page.inner_text("#grid-panel")
    assert "第7村第12网格" in panel
    assert all(member["name"] in panel for member in county["staff"])
    assert page.inner_text("#panel-residents") == "0"
    assert page.inner_text("#panel-households") == "0"
    assert "没有未办结案件" in panel
    screenshot(page, "map-5000-grids-village")
    page.wait_for_selector(READY)

    assert {url.split("?")[1].split("&")[0] for url, _ in sizes.shapes} >= {"zoom=12"}
    assert len(sizes.shapes) >= 2, sizes.shapes
    assert all(size < SHAPES_BYTES for _, size in sizes.shapes), sizes.shapes
    assert sizes.cases and all(size < CASES_BYTES for size in sizes.cases), sizes.cases
