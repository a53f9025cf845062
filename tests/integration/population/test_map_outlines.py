"""map_outlines: the map's polygons per zoom and viewport, precomputed once per territory
version and zoom, the level chosen by the feature budget, within the caller's scope."""

from datetime import UTC, timedelta

import pytest
from nameko.exceptions import RemoteError

from gridwork_common.context import CallerContext
from services.population import store
from services.population.application import Population
from services.population.domain.outlines import ZOOMS
from services.population.outline_store import OutlineStore
from services.population.usecases import map_outlines
from tests.integration.population.conftest import ADMIN, OPERATOR_B
from tests.population_data import (
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_B1,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A,
    VILLAGE_B,
    feature,
    square,
)


def codes(answer: dict) -> list[str]:
    return [outline["code"] for outline in answer["outlines"]]


def test_the_grids_are_drawn_when_they_fit_the_budget_else_their_outlines(
    county, as_user, monkeypatch
):
    answer = county.map_outlines(COUNTY, 12)
    assert (answer["level"], codes(answer)) == ("grid", [GRID_A1, GRID_A2, GRID_B1])
    assert answer["grids"] == 3
    assert answer["bbox"] == [102.5, 24.3, 102.61, 24.31]
    assert answer["outlines"][0]["name"] == "玉兴第一网格"
    assert answer["outlines"][0]["geometry"]["type"] == "Polygon"

    # Only grid A2's east half and B1 are in this viewport.
    view = [102.515, 24.2, 102.7, 24.4]
    assert codes(county.map_outlines(COUNTY, 12, view)) == [GRID_A2, GRID_B1]
    assert codes(county.map_outlines(COUNTY, 12, [100, 20, 101, 21])) == []

    monkeypatch.setattr(map_outlines, "FEATURE_BUDGET", 2)
    villages = county.map_outlines(COUNTY, 12)
    assert (villages["level"], codes(villages)) == ("village", [VILLAGE_A, VILLAGE_B])
    assert [o["grids"] for o in villages["outlines"]] == [2, 1]
    assert villages["outlines"][0]["name"] == "玉兴社区"
    assert county.map_outlines(COUNTY, 12, view)["level"] == "grid"  # two grids in view
    monkeypatch.setattr(map_outlines, "FEATURE_BUDGET", 1)
    townships = county.map_outlines(COUNTY, 12)
    assert (townships["level"], codes(townships)) == ("township", [TOWNSHIP_A, TOWNSHIP_B])


def test_outlines_are_built_once_per_territory_version_for_every_zoom(county, population_db):
    first = county.map_outlines(COUNTY, 12)  # built here if the timer has not yet
    assert county.build_map_outlines()["version"] == first["version"]
    builds = list(population_db[store.MAP_OUTLINE_BUILDS].find())
    assert sorted(b["zoom"] for b in builds) == list(ZOOMS)
    assert {b["version"] for b in builds} == {first["version"]}
    assert county.build_map_outlines() == {"version": first["version"], "built": []}
    stored = population_db[store.MAP_OUTLINES].count_documents({"version": first["version"]})
    assert stored == len(ZOOMS) * (3 + 2 + 2)  # grids, villages, townships

    moved = {
        "type": "FeatureCollection",
        "features": [feature(GRID_B1, "凤凰第一网格", square(102.70, 24.30))],
    }
    county.import_territory(moved)
    # Until the new version is built, maps get the last complete one (never a half).
    stale = county.map_outlines(COUNTY, 12)
    rebuilt = county.build_map_outlines()
    assert rebuilt["version"] > first["version"]
    assert stale["version"] in (first["version"], rebuilt["version"])
    after = county.map_outlines(COUNTY, 12)
    assert after["version"] == rebuilt["version"]
    assert after["bbox"] == [102.5, 24.3, 102.71, 24.31]
    assert {b["version"] for b in population_db[store.MAP_OUTLINE_BUILDS].find()} == {
        after["version"]
    }
    assert population_db[store.MAP_OUTLINES].count_documents({"version": first["version"]}) == 0

    unchanged = county.import_territory(moved)
    assert unchanged["unchanged"] == 1
    assert county.build_map_outlines() == {"version": after["version"], "built": []}


def test_only_administrators_build_outlines(county, as_user):
    with pytest.raises(RemoteError) as refused:
        as_user(OPERATOR_B).build_map_outlines()
    assert refused.value.exc_type == "Forbidden"


def test_a_caller_sees_only_its_own_territory(county, as_user):
    operator_b = as_user(OPERATOR_B)
    answer = operator_b.map_outlines(TOWNSHIP_B, 10)
    assert (answer["level"], codes(answer), answer["grids"]) == ("grid", [GRID_B1], 1)
    for code in (COUNTY, TOWNSHIP_A, GRID_A1):
        with pytest.raises(RemoteError) as refused:
            operator_b.map_outlines(code, 10)
        assert refused.value.exc_type == "NotFound"
    for zoom, bbox, field in ((10.5, None, "zoom"), (10, [1, 2], "bbox")):
        with pytest.raises(RemoteError) as refused:
            as_user(ADMIN).map_outlines(COUNTY, zoom, bbox)
        assert refused.value.exc_type == "InvalidInput"
        assert refused.value.value.startswith(field)


def test_the_timer_builds_once_the_territory_is_quiet(county, population_db):
    version, changed_at = OutlineStore(population_db).territory_change()
    changed_at = changed_at.replace(tzinfo=UTC)

    def timer_at(seconds_after_the_change: float) -> dict:
        caller = CallerContext(user_id="population-timer", roles=("system",))
        clock = lambda: changed_at + timedelta(seconds=seconds_after_the_change)  # noqa: E731
        population = Population(population_db, None, None, caller, COUNTY, clock)
        return population.build_map_outlines(quiet_s=10)

    assert timer_at(5) == {"version": version, "built": [], "waiting": True}
    assert "waiting" not in timer_at(11)
    assert OutlineStore(population_db).built_zooms(version) == set(ZOOMS)


def test_a_part_imported_since_the_last_build_is_drawn_at_once(county):
    county.build_map_outlines()
    township, village, grid = COUNTY + "003", COUNTY + "003001", COUNTY + "003001001"
    county.import_territory(
        {
            "type": "FeatureCollection",
            "features": [
                feature(township, "新街道"),
                feature(village, "新社区"),
                feature(grid, "新网格", square(102.80, 24.30)),
            ],
        }
    )
    # The timer has not built the new version yet, but the older one has nothing there.
    answer = county.map_outlines(township, 12)
    assert (codes(answer), answer["grids"]) == ([grid], 1)
    assert codes(county.map_outlines(COUNTY, 12)) == [GRID_A1, GRID_A2, GRID_B1, grid]
