"""Which grid contains a point, from the grids' polygons held in memory.

Planar geometry on longitude/latitude, where MongoDB's `$geoIntersects` (the population
service's `locate`) follows great circles: the two can differ only within a metre or so
of a long edge, so a point that close to its grid's outline is left to the population
service (`None`), as is a point in no grid."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shapely import STRtree
from shapely.geometry import Point, shape

# About 10 m: well beyond where planar and spherical edges part, and beyond the rounding
# of stored coordinates.
NEAR_OUTLINE_DEGREES = 1e-4


class GridIndex:
    def __init__(self, grids: Iterable[Mapping]):
        """`grids`: {"code", "geometry" (a GeoJSON Polygon or MultiPolygon)} each."""
        grids = list(grids)
        self.codes = [grid["code"] for grid in grids]
        self.shapes = [shape(grid["geometry"]) for grid in grids]
        self.tree = STRtree(self.shapes)

    def __len__(self) -> int:
        return len(self.codes)

    def grid_at(self, lon: float, lat: float) -> str | None:
        """The code of the one grid clearly containing the point, else None."""
        point = Point(lon, lat)
        hits = self.tree.query(point, predicate="intersects")
        if len(hits) != 1:
            return None  # in no grid, or on an edge two grids share
        polygon = self.shapes[hits[0]]
        if polygon.boundary.distance(point) < NEAR_OUTLINE_DEGREES:
            return None
        return self.codes[hits[0]]
