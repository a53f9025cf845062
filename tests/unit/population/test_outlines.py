"""The map's outlines: levels by a feature budget, villages and townships merged from
their grids, simplified to the zoom, the viewport and zoom checked."""

import pytest
from shapely.geometry import shape

from gridwork_common.errors import InvalidInput
from services.population.domain.outlines import (
    GridShape,
    build_outlines,
    check_bbox,
    check_zoom,
    choose_level,
    drawn_levels,
    tolerance_for,
)
from services.population.domain.shapes import vertex_count

TOWNSHIP = "530402001"
CELL = 0.01


def square(x: int, y: int, steps: int = 10) -> dict:
    """A grid cell whose edges carry `steps` vertices each, shared exactly with its
    neighbours' edges (the cells tile)."""
    west, south = 103 + x * CELL, 25 + y * CELL
    corners = [(west, south), (west + CELL, south), (west + CELL, south + CELL)]
    corners.append((west, south + CELL))
    ring = []
    for (x0, y0), (x1, y1) in zip(corners, [*corners[1:], corners[0]], strict=True):
        ring += [[x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps] for i in range(steps)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def grids() -> list[GridShape]:
    # two villages of a township, 2 by 2 grids each, side by side
    shapes = []
    for v in range(2):
        village = f"{TOWNSHIP}{v + 1:03d}"
        for g in range(4):
            code = f"{village}{g + 1:03d}"
            path = ("530402", TOWNSHIP, village, code)
            shapes.append(GridShape(code, f"网格{g + 1}", path, square(v * 2 + g % 2, g // 2)))
    return shapes


def test_villages_and_townships_are_their_grids_merged():
    names = {TOWNSHIP: "街道", f"{TOWNSHIP}001": "一村", f"{TOWNSHIP}002": "二村"}
    outlines = {o.code: o for o in build_outlines(grids(), names, tolerance_for(12))}
    assert len(outlines) == 8 + 2 + 1
    village = outlines[f"{TOWNSHIP}001"]
    assert (village.level, village.name, village.grids) == ("village", "一村", 4)
    assert village.path == ("530402", TOWNSHIP, f"{TOWNSHIP}001")
    assert shape(village.geometry).area == pytest.approx((2 * CELL) ** 2, rel=1e-6)
    assert vertex_count(village.geometry) == 5  # the shared inner edges are gone
    township = outlines[TOWNSHIP]
    assert (township.level, township.grids) == ("township", 8)
    assert township.bbox == (103.0, 25.0, 103.04, 25.02)
    grid = outlines[f"{TOWNSHIP}001001"]
    assert (grid.level, grid.grids, grid.path[-1]) == ("grid", 1, grid.code)


def test_outlines_keep_every_vertex_at_full_precision_and_drop_them_zoomed_out():
    fine = build_outlines(grids()[:1], {}, tolerance_for(17))
    coarse = build_outlines(grids()[:1], {}, tolerance_for(8))
    assert vertex_count(fine[0].geometry) == 41
    assert vertex_count(coarse[0].geometry) == 5
    assert fine[1].name == fine[1].code  # a village without a name in the tree


def test_the_finest_level_within_the_budget_is_drawn():
    counts = {"township": 3, "village": 40, "grid": 5000}
    levels = drawn_levels("county")
    assert levels == ("township", "village", "grid")
    assert choose_level(levels, counts.get, budget=1000) == "village"
    assert choose_level(levels, counts.get, budget=5000) == "grid"
    assert choose_level(levels, counts.get, budget=10) == "township"
    assert drawn_levels("township") == ("village", "grid")
    assert drawn_levels("village") == ("grid",)
    assert drawn_levels("grid") == ("grid",)
    assert choose_level(("grid",), lambda level: 10**6) == "grid"


def test_zoom_and_viewport_are_checked():
    assert check_zoom(3) == 6 and check_zoom(25) == 17 and check_zoom(12) == 12
    assert tolerance_for(17) == 0.0 and tolerance_for(12) == pytest.approx(360 / 256 / 4096 / 2)
    assert check_bbox(None) is None
    assert check_bbox([103, 25, 103.5, 25.2]) == (103.0, 25.0, 103.5, 25.2)
    for bad in ("12", 12.5, True):
        with pytest.raises(InvalidInput, match="zoom"):
            check_zoom(bad)
    for bad in ([1, 2, 3], "1,2,3,4", [104, 25, 103, 26], [0, -91, 1, 0], [1, 2, 3, "4"]):
        with pytest.raises(InvalidInput, match="bbox"):
            check_bbox(bad)
