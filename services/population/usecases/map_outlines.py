"""The map's polygons for a territory node, a zoom and a viewport: precomputed per
territory version and zoom (outline_store), chosen by level under a feature budget."""

from __future__ import annotations

from collections.abc import Sequence

from services.population.domain import access
from services.population.domain.outlines import (
    DRAWN_LEVELS,
    FEATURE_BUDGET,
    build_outlines,
    check_bbox,
    check_zoom,
    choose_level,
    drawn_levels,
    tolerance_for,
)
from services.population.outline_store import OutlineStore
from services.population.usecases.base import UseCases


class MapOutlineUseCases(UseCases):
    def map_outlines(self, code: str, zoom: int, bbox: Sequence[float] | None = None) -> dict:
        """What a map of `code` at `zoom` draws within `bbox` (west, south, east, north;
        None: the whole node): the grids, or their villages' or townships' outlines when
        more grids than the budget are in view. Only what the caller may see."""
        node = self.territory_node(code)  # NotFound outside the caller's scope
        zoom, view = check_zoom(zoom), check_bbox(bbox)
        outlines = OutlineStore(self.db)
        version = self._built_outlines(outlines, zoom)
        scope = {"$and": [{"path": code}, access.scope_filter(self.caller)]}
        level = choose_level(
            drawn_levels(node["level"]),
            lambda level: outlines.count_in_view(version, zoom, level, scope, view),
            FEATURE_BUDGET,
        )
        return {
            "code": code,
            "zoom": zoom,
            "version": version,
            "level": level,
            **outlines.extent(version, zoom, scope),
            "outlines": outlines.outlines_in_view(version, zoom, level, scope, view),
        }

    def _built_outlines(self, outlines: OutlineStore, zoom: int) -> int:
        """The current territory version, its outlines at `zoom` built if they were not.
        The version is read before the territory: a build that overlaps an import is
        stored under the older version, which the import has already left behind."""
        version = outlines.territory_version()
        if not outlines.is_built(version, zoom):
            names = outlines.node_names(DRAWN_LEVELS[:-1])
            built = build_outlines(outlines.grid_shapes(), names, tolerance_for(zoom))
            outlines.save_build(version, zoom, built)
        return version
