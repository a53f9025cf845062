"""What the map draws at a zoom: the grids themselves when few enough are in view, else
the outlines of their villages or townships (each the union of its grids), simplified
to half a screen pixel at that zoom.

The level is chosen by a feature budget, not by a fixed zoom: a county of 5,000 small
grids and one of 200 large ones both get the finest level whose count in the viewport
stays under FEATURE_BUDGET, so an answer is never more than that many features.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from shapely import unary_union
from shapely.geometry import mapping, shape

from services.population.domain.codes import CODE_LENGTHS, LEVELS
from services.population.domain.errors import InvalidField
from services.population.domain.shapes import MAX_TOLERANCE, simplified

# Coarse to fine: what a map may draw under a county.
DRAWN_LEVELS = ("township", "village", "grid")
# At most this many polygons per answer: a canvas draws them smoothly, and at half a
# pixel's precision they stay a few hundred kilobytes.
FEATURE_BUDGET = 1000
MIN_ZOOM, MAX_ZOOM = 6, 17
ZOOMS = tuple(range(MIN_ZOOM, MAX_ZOOM + 1))  # outlines are precomputed for each
FULL_PRECISION_ZOOM = 17  # a pixel is under a metre here: nothing to drop


@dataclass(frozen=True)
class Outline:
    """One polygon to draw: a grid, or a village's or township's grids merged."""

    code: str
    name: str
    level: str
    path: tuple[str, ...]
    grids: int
    geometry: dict
    bbox: tuple[float, float, float, float]  # west, south, east, north


@dataclass(frozen=True)
class GridShape:
    code: str
    name: str
    path: tuple[str, ...]
    geometry: Mapping


def check_zoom(zoom) -> int:
    if isinstance(zoom, bool) or not isinstance(zoom, int):
        raise InvalidField("zoom", f"must be an integer from {MIN_ZOOM} to {MAX_ZOOM}")
    return min(MAX_ZOOM, max(MIN_ZOOM, zoom))


def tolerance_for(zoom: int) -> float:
    """Half a screen pixel at `zoom` (Web Mercator, 256-pixel tiles), in degrees: what
    the map can show, so dropping finer vertices changes nothing visible."""
    if zoom >= FULL_PRECISION_ZOOM:
        return 0.0
    pixel = 360.0 / (256 * 2**zoom)
    return min(MAX_TOLERANCE, pixel / 2)


def check_bbox(bbox) -> tuple[float, float, float, float] | None:
    """The viewport as (west, south, east, north) in degrees, or None for everything."""
    if bbox is None:
        return None
    if (
        not isinstance(bbox, Sequence)
        or isinstance(bbox, str)
        or len(bbox) != 4
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in bbox)
    ):
        raise InvalidField("bbox", "must be four numbers: west, south, east, north")
    west, south, east, north = (float(v) for v in bbox)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidField("bbox", "must be west ≤ east and south ≤ north, in degrees")
    return west, south, east, north


def drawn_levels(scope_level: str) -> tuple[str, ...]:
    """The levels a map of a node at `scope_level` may draw, coarse to fine: those below
    it (a grid's own map draws the grid)."""
    if scope_level == "grid":
        return ("grid",)
    below = LEVELS.index(scope_level) + 1
    return tuple(level for level in DRAWN_LEVELS if LEVELS.index(level) >= below)


def choose_level(
    levels: Sequence[str], count_in_view: Callable[[str], int], budget: int = FEATURE_BUDGET
) -> str:
    """The finest of `levels` with at most `budget` features in view; the coarsest when
    none fits (a node's children are drawn however many there are)."""
    for level in reversed(levels[1:]):
        if count_in_view(level) <= budget:
            return level
    return levels[0]


@dataclass(frozen=True)
class MergedShape:
    """A grid, or a village's or township's grids merged, at survey precision."""

    code: str
    name: str
    level: str
    path: tuple[str, ...]
    grids: int
    polygon: object  # a shapely Polygon or MultiPolygon


def merged_shapes(grids: Iterable[GridShape], names: Mapping[str, str]) -> list[MergedShape]:
    """Every grid, and every village and township that has grids as the union of its
    grids' polygons (done once, then simplified for each zoom)."""
    members: dict[str, list] = defaultdict(list)
    shapes = []
    for grid in grids:
        polygon = shape(grid.geometry)
        for level in ("township", "village"):
            members[grid.code[: CODE_LENGTHS[level]]].append(polygon)
        shapes.append(MergedShape(grid.code, grid.name, "grid", grid.path, 1, polygon))
    for code, polygons in members.items():
        level = "township" if len(code) == CODE_LENGTHS["township"] else "village"
        merged = unary_union(polygons)
        if not merged.is_valid:
            merged = merged.buffer(0)
        path = tuple(code[: CODE_LENGTHS[above]] for above in LEVELS[: LEVELS.index(level) + 1])
        shapes.append(MergedShape(code, names.get(code, code), level, path, len(polygons), merged))
    return shapes


def outlines_at(shapes: Iterable[MergedShape], tolerance: float) -> list[Outline]:
    """The shapes simplified to `tolerance` degrees, ready to store and draw."""
    return [
        Outline(
            code=merged.code,
            name=merged.name,
            level=merged.level,
            path=merged.path,
            grids=merged.grids,
            geometry=simplified(mapping(merged.polygon), tolerance),
            bbox=tuple(round(value, 6) for value in merged.polygon.bounds),
        )
        for merged in shapes
    ]


def build_outlines(
    grids: Iterable[GridShape], names: Mapping[str, str], tolerance: float
) -> list[Outline]:
    """`merged_shapes` simplified to one tolerance."""
    return outlines_at(merged_shapes(grids, names), tolerance)
