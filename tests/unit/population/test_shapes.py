"""Grid polygons simplified for the map: fewer vertices, still valid polygons."""

import math

import pytest
from shapely.geometry import shape

from gridwork_common.errors import InvalidInput
from services.population.domain.shapes import check_tolerance, simplified, vertex_count


def wiggly_ring(lon, lat, radius, vertices=400, wiggle=0.02):
    """A closed ring around (lon, lat) with a surveyor's many small wiggles."""
    ring = []
    for index in range(vertices):
        angle = 2 * math.pi * index / vertices
        r = radius * (1 + wiggle * math.sin(angle * 37))
        ring.append([lon + r * math.cos(angle), lat + r * math.sin(angle)])
    return [*ring, ring[0]]


def test_a_detailed_grid_loses_vertices_but_not_its_shape():
    geometry = {"type": "Polygon", "coordinates": [wiggly_ring(102.5, 24.3, 0.005)]}
    thinner = simplified(geometry, 0.0002)
    assert thinner["type"] == "Polygon"
    assert vertex_count(thinner) < vertex_count(geometry) / 4
    polygon, original = shape(thinner), shape(geometry)
    assert polygon.is_valid
    assert abs(polygon.area - original.area) / original.area < 0.05
    assert polygon.symmetric_difference(original).area / original.area < 0.05


def test_simplifying_keeps_holes_and_thin_parts_valid():
    outer = wiggly_ring(102.5, 24.3, 0.01)
    hole = list(reversed(wiggly_ring(102.5, 24.3, 0.004)))
    # A thin spike: naive simplification at this tolerance would collapse it into a line.
    spike = [[102.6, 24.3], [102.61, 24.3], [102.61, 24.30001], [102.6, 24.30002], [102.6, 24.3]]
    geometry = {
        "type": "MultiPolygon",
        "coordinates": [[outer, hole], [spike]],
    }
    for tolerance in (0.00001, 0.0005, 0.003, 0.01):
        thinner = simplified(geometry, tolerance)
        polygon = shape(thinner)
        assert polygon.is_valid and not polygon.is_empty, tolerance
        assert thinner["type"] in ("Polygon", "MultiPolygon")
        # The drawn outline stays close to the surveyed one (Hausdorff, discrete).
        assert polygon.hausdorff_distance(shape(geometry)) <= 2 * tolerance, tolerance
    assert len(shape(simplified(geometry, 0.0005)).geoms[0].interiors) == 1  # the hole stays


def test_no_tolerance_keeps_every_vertex_and_rounds_coordinates():
    geometry = {"type": "Polygon", "coordinates": [wiggly_ring(102.5, 24.3, 0.005, 60)]}
    same = simplified(geometry, 0.0)
    assert vertex_count(same) == vertex_count(geometry)
    assert all(
        len(f"{value:.12f}".rstrip("0").split(".")[1]) <= 6
        for point in same["coordinates"][0]
        for value in point
    )


@pytest.mark.parametrize("tolerance", [-0.1, 0.5, True, "0.001", None])
def test_a_tolerance_out_of_bounds_is_refused(tolerance):
    with pytest.raises(InvalidInput, match="tolerance"):
        check_tolerance(tolerance)
