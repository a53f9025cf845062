"""The events service's in-memory grid index and its cache (no infrastructure)."""

from services.events.domain.grids import GridIndex
from services.events.grid_cache import GridCache
from tests.population_data import GRID_A1, GRID_A2, GRID_B1, county_features

GRIDS = [
    {"code": f["properties"]["code"], "geometry": f["geometry"]}
    for f in county_features()["features"]
    if f["properties"]["code"] in (GRID_A1, GRID_A2, GRID_B1)
]


def test_a_point_well_inside_a_grid_is_placed():
    index = GridIndex(GRIDS)
    assert index.grid_at(102.505, 24.305) == GRID_A1
    assert index.grid_at(102.515, 24.305) == GRID_A2
    assert index.grid_at(102.605, 24.305) == GRID_B1


def test_points_outside_or_near_an_outline_are_left_to_the_population_service():
    index = GridIndex(GRIDS)
    assert index.grid_at(100.0, 30.0) is None  # in no grid
    assert index.grid_at(102.51, 24.305) is None  # on the border A1 and A2 share
    assert index.grid_at(102.50002, 24.305) is None  # within metres of A1's outline


class Calls:
    def __init__(self):
        self.loads = 0
        self.asked = []

    def load(self):
        self.loads += 1
        return GRIDS

    def ask(self, lon, lat):
        self.asked.append((lon, lat))
        return {"grid": {"code": "asked"}}


def test_the_index_is_loaded_once_and_asks_only_for_what_it_cannot_place():
    cache, calls = GridCache(), Calls()
    assert cache.grid_of(102.505, 24.305, calls.load, calls.ask) == GRID_A1
    assert cache.grid_of(102.515, 24.305, calls.load, calls.ask) == GRID_A2
    assert cache.grid_of(100.0, 30.0, calls.load, calls.ask) == "asked"
    assert calls.loads == 1
    assert calls.asked == [(100.0, 30.0)]


def test_a_grid_change_or_age_reloads_the_index():
    now = [0.0]
    cache, calls = GridCache(max_age_s=60, monotonic=lambda: now[0]), Calls()
    cache.grid_of(102.505, 24.305, calls.load, calls.ask)
    cache.invalidate()
    cache.grid_of(102.505, 24.305, calls.load, calls.ask)
    assert calls.loads == 2
    now[0] = 61.0
    cache.grid_of(102.505, 24.305, calls.load, calls.ask)
    assert calls.loads == 3


def test_an_index_loaded_across_a_grid_change_is_used_once_not_kept():
    cache, calls = GridCache(), Calls()

    def load_while_a_grid_changes():
        cache.invalidate()  # the grid.updated event arrives during the load
        return calls.load()

    assert cache.grid_of(102.505, 24.305, load_while_a_grid_changes, calls.ask) == GRID_A1
    cache.grid_of(102.505, 24.305, calls.load, calls.ask)
    assert calls.loads == 2
