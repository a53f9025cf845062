"""The map's patrol layer in a real browser: a grid worker's patrol, walked through the
API as the phone does it, drawn on the village centre's map as a track (flagged patrols
dashed), with a control to switch the layer off. (Scope is the population service's:
tests/integration/gateway/test_scope_leaks.py tries /patrol-tracks from outside.)"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests

from gridwork_common.clock import CHINA_TIME
from tests.ui.conftest import sign_in
from tests.ui.test_map import api_headers, centre_of, open_map

pytestmark = pytest.mark.ui


def walk_patrol(stack: dict, grid: str) -> str:
    """A 20-minute patrol across `grid`, started, tracked in two pieces, finished; the
    month (China time) it belongs to."""
    headers = api_headers(stack, "grid-worker")
    gateway = f"{stack['gateway']}/api/v1/patrols"
    patrol_id = str(uuid.uuid4())
    # a patrol of the last half hour, by the stack's pinned clock
    started = stack["clock"]() - timedelta(minutes=30)
    lon, lat = centre_of(stack, grid)
    points = [
        {
            "lon": round(lon - 0.002 + i * 0.0001, 6),
            "lat": lat,
            "at": (started + timedelta(seconds=30 * i)).isoformat(),
        }
        for i in range(40)
    ]
    answer = requests.put(
        f"{gateway}/{patrol_id}",
        json={"started_at": started.isoformat()},
        headers=headers,
        timeout=20,
    )
    assert answer.status_code == 201, answer.text
    for piece, part in enumerate((points[:20], points[20:])):
        answer = requests.put(
            f"{gateway}/{patrol_id}/track/{piece}",
            json={"points": part},
            headers=headers,
            timeout=20,
        )
        assert answer.status_code == 200, answer.text
    ended = {"ended_at": (started + timedelta(minutes=20)).isoformat()}
    answer = requests.post(f"{gateway}/{patrol_id}/finish", json=ended, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    return started.astimezone(CHINA_TIME).strftime("%Y-%m")  # the month it counts in


@pytest.mark.parametrize("viewport", ["desktop"])
def test_the_village_centre_sees_the_patrol_tracks_as_a_layer(page, ui_stack):
    grid = ui_stack["users"]["grid-worker"][1]
    month = walk_patrol(ui_stack, grid)

    sign_in(page, ui_stack, "village-centre")
    open_map(page, ui_stack, f"?month={month}")
    page.wait_for_selector("#grid-map[data-patrol-tracks]", timeout=20_000)
    assert int(page.get_attribute("#grid-map", "data-patrol-tracks")) >= 1
    assert page.locator("path.patrol-track").count() >= 1
    toggle = page.get_by_label("巡查轨迹")
    assert toggle.is_checked()
    toggle.uncheck()
    assert page.locator("path.patrol-track").count() == 0
