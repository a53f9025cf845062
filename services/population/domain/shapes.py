"""Grid polygons simplified for drawing on a map: a county of thousands of grids is sent
with as many vertices as the zoom level can show, never at survey precision."""

from __future__ import annotations

from collections.abc import Mapping

from shapely.geometry import mapping, shape

from services.population.domain.errors import InvalidField

POLYGON_TYPES = ("Polygon", "MultiPolygon")
# Degrees; about 1 km at these latitudes. Coarser than this, grids vanish into dots.
MAX_TOLERANCE = 0.01
# About 0.1 m: finer digits only make the document longer.
COORDINATE_DECIMALS = 6


def check_tolerance(tolerance) -> float:
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not 0 <= tolerance <= MAX_TOLERANCE
    ):
        raise InvalidField("tolerance", f"must be a number of degrees from 0 to {MAX_TOLERANCE}")
    return float(tolerance)


def simplified(geometry: Mapping, tolerance: float) -> dict:
    """`geometry` (a valid GeoJSON Polygon/MultiPolygon) with vertices closer than
    `tolerance` to the outline dropped (Douglas-Peucker keeping topology) and coordinates
    rounded; whenever a step would leave an invalid or empty polygon, the step is skipped,
    so what is drawn is always a valid polygon of the grid."""
    polygon = shape(geometry)
    if tolerance > 0:
        thinner = polygon.simplify(tolerance, preserve_topology=True)
        if _drawable(thinner):
            polygon = thinner
    rounded = shape(_rounded(mapping(polygon)))
    if _drawable(rounded):
        polygon = rounded
    return _as_lists(mapping(polygon))


def vertex_count(geometry: Mapping) -> int:
    """Vertices of a GeoJSON Polygon/MultiPolygon (closing points included)."""
    rings = (
        geometry["coordinates"]
        if geometry["type"] == "Polygon"
        else [ring for polygon in geometry["coordinates"] for ring in polygon]
    )
    return sum(len(ring) for ring in rings)


def _drawable(polygon) -> bool:
    return polygon.geom_type in POLYGON_TYPES and not polygon.is_empty and polygon.is_valid


def _rounded(value):
    if isinstance(value, float):
        return round(value, COORDINATE_DECIMALS)
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def _as_lists(value):
    if isinstance(value, list | tuple):
        return [_as_lists(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _as_lists(item) for key, item in value.items()}
    return value
