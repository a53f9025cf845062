"""Reports are located from the events service's in-memory grid index, which follows the
population service's grid changes (a grid.updated broadcast) on real services."""

import pytest

from devstack.processes import wait_until
from tests.integration.events.conftest import COUNTY_CENTRE
from tests.integration.events.support import Desk
from tests.population_data import GRID_A1, GRID_A2, feature

pytestmark = pytest.mark.integration

POINT = [102.507, 24.305]  # in A1, 0.003° from the border it shares with A2


def rectangle(lon: float, lat: float, width: float, height: float) -> dict:
    ring = [[lon, lat], [lon + width, lat], [lon + width, lat + height], [lon, lat + height]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_reports_follow_a_redrawn_border(county, as_user):
    desk = Desk(as_user)
    assert desk.report(COUNTY_CENTRE, point=POINT)["grid_code"] == GRID_A1  # index loaded

    # The border moves west, past the point: A1 now ends at 102.505.
    county.population.import_territory(
        {
            "type": "FeatureCollection",
            "features": [
                feature(GRID_A1, "玉兴第一网格", rectangle(102.50, 24.30, 0.005, 0.01)),
                feature(GRID_A2, "玉兴第二网格", rectangle(102.505, 24.30, 0.015, 0.01)),
            ],
        }
    )
    wait_until(
        lambda: desk.report(COUNTY_CENTRE, point=POINT)["grid_code"] == GRID_A2,
        10,
        "a report located in the redrawn grid",
        interval_s=0.1,
    )
