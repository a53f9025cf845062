"""The map's polygons for a territory node, a zoom and a viewport: precomputed per
territory version and zoom (outline_store) by the population timer after every import,
chosen by level under a feature budget."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta

from eventlet import tpool

from services.population.domain import access
from services.population.domain.outlines import (
    DRAWN_LEVELS,
    FEATURE_BUDGET,
    ZOOMS,
    check_bbox,
    check_zoom,
    choose_level,
    drawn_levels,
    merged_shapes,
    outlines_at,
    tolerance_for,
)
from services.population.outline_store import OutlineStore
from services.population.usecases.base import UseCases

NAMED_LEVELS = DRAWN_LEVELS[:-1]  # the outlines named after their node: townships, villages
BUILD_CHUNK = 500


class MapOutlineUseCases(UseCases):
    def map_outlines(self, code: str, zoom: int, bbox: Sequence[float] | None = None) -> dict:
        """What a map of `code` at `zoom` draws within `bbox` (west, south, east, north;
        None: the whole node): the grids, or their villages' or townships' outlines when
        more grids than the budget are in view. Only what the caller may see."""
        node = self.territory_node(code)  # NotFound outside the caller's scope
        zoom, view = check_zoom(zoom), check_bbox(bbox)
        outlines = OutlineStore(self.db)
        scope = {"$and": [{"path": code}, access.scope_filter(self.caller)]}
        version, extent = self._outline_version(outlines, zoom, scope)
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
            **extent,
            "outlines": outlines.outlines_in_view(version, zoom, level, scope, view),
        }

    def _outline_version(self, outlines: OutlineStore, zoom: int, scope) -> tuple[int, dict]:
        """The newest territory version whose outlines at `zoom` are built, and the
        scope's extent in it: the current version once the timer has built it; an older
        one meanwhile (an answer does not wait for a county's worth of polygons) unless
        it has nothing of this scope (a county imported since); else built here."""
        version = outlines.territory_version()
        built = outlines.latest_build(zoom, version)
        if built is not None and built != version:
            extent = outlines.extent(built, zoom, scope)
            if extent["grids"]:
                return built, extent
        if built != version:
            shapes = _merged(outlines)
            _build(outlines, shapes, version, zoom)
        return version, outlines.extent(version, zoom, scope)

    def build_map_outlines(self, quiet_s: float = 0) -> dict:
        """Build the current territory version's outlines at every zoom not built yet,
        then drop the older versions' (the population timer; administrators may call it
        after an import not to wait for the timer). With `quiet_s`, nothing is built
        until the territory has not changed for that long: an import of thousands of
        nodes keeps raising the version while it runs, and is built once, after it."""
        self.require(access.ADMINISTRATORS, "building the map's outlines")
        outlines = OutlineStore(self.db)
        version, changed_at = outlines.territory_change()
        if version == 0:
            return {"version": 0, "built": []}  # no territory yet
        if changed_at is not None and quiet_s > 0:
            changed_at = changed_at.replace(tzinfo=changed_at.tzinfo or UTC)
            if self.clock() - changed_at < timedelta(seconds=quiet_s):
                return {"version": version, "built": [], "waiting": True}
        missing = [zoom for zoom in ZOOMS if zoom not in outlines.built_zooms(version)]
        if missing:
            shapes = _merged(outlines)
            for zoom in missing:
                _build(outlines, shapes, version, zoom)
            outlines.drop_versions_before(version)
        return {"version": version, "built": missing}


# The geometry work runs in a native thread (eventlet's tpool): the service's green threads
# share one OS thread, and seconds of merging a county's grids there would hold up every
# other call of the service; a native thread is preempted, so they are answered meanwhile.


def _merged(outlines: OutlineStore) -> list:
    grids, names = outlines.grid_shapes(), outlines.node_names(NAMED_LEVELS)
    return tpool.execute(merged_shapes, list(grids), names)


def _build(outlines: OutlineStore, shapes: list, version: int, zoom: int) -> None:
    """Simplify (off the hub) and store a chunk at a time."""
    tolerance = tolerance_for(zoom)
    for start in range(0, len(shapes), BUILD_CHUNK):
        chunk = tpool.execute(outlines_at, shapes[start : start + BUILD_CHUNK], tolerance)
        outlines.save_outlines(version, zoom, chunk)
    outlines.mark_built(version, zoom)
