"""The map (一张图) in a real browser: the caller's grids only, colours that follow the
cases (open, overdue through the deadline timer, closed), filters in the URL, a grid's
panel, the wall view; accessible and without console errors at both sizes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import wait_until
from gridwork_common.context import CallerContext
from services.population.demo import demo_staff
from tests.integration.events.support import events_database, move_deadlines
from tests.ui.conftest import assert_accessible, screenshot, sign_in
from tests.ui.maps import READY, click_at, drawn, grid_status, open_map

pytestmark = pytest.mark.ui

TIMER_WAIT_S = 75  # the events service checks deadlines every 30 s


def api_headers(stack: dict, username: str) -> dict:
    answer = requests.post(
        f"{stack['gateway']}/api/v1/auth/token",
        json={"grant_type": "password", "username": username, "password": stack["password"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def grids_of(stack: dict, prefix: str) -> list[str]:
    return sorted(
        f["properties"]["code"]
        for f in stack["territory"]["features"]
        if len(f["properties"]["code"]) == 15 and f["properties"]["code"].startswith(prefix)
    )


def centre_of(stack: dict, grid: str) -> list[float]:
    (feature,) = [f for f in stack["territory"]["features"] if f["properties"]["code"] == grid]
    ring = feature["geometry"]["coordinates"][0][:-1]
    return [sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)]


def village_of(stack: dict) -> str:
    return stack["users"]["village-centre"][1]


def other_townships_grids(stack: dict) -> list[str]:
    township = stack["users"]["township-centre"][1]
    county = stack["users"]["county-centre"][1]
    return [grid for grid in grids_of(stack, county) if not grid.startswith(township)]


def wait_for_status(page, stack: dict, grid: str, wanted: str, timeout_s: float) -> None:
    def shown() -> bool:
        open_map(page, stack)
        return grid_status(page, grid) == wanted

    wait_until(shown, timeout_s, f"grid {grid} shown as {wanted}", interval_s=3)


@pytest.mark.parametrize("viewport", ["desktop"])
def test_a_village_centre_sees_its_grids_coloured_by_their_cases(page, ui_stack):
    village = village_of(ui_stack)
    mine = grids_of(ui_stack, village)
    elsewhere = other_townships_grids(ui_stack)
    # The last grid of the village: other tests' cases go to the demo users' first grid.
    grid = mine[-1]
    sign_in(page, ui_stack, "village-centre")
    open_map(page, ui_stack)
    shown = drawn(page)
    assert page.get_attribute("#grid-map", "data-level") == "grid"
    assert set(shown) == set(mine)
    assert not set(shown) & set(elsewhere)
    assert shown[grid] == "none"
    assert page.locator("#grid-map canvas").count() >= 1
    # One canvas, not a path per grid (patrol tracks, a few lines, are SVG above it).
    assert page.locator("#grid-map svg path:not(.patrol-track)").count() == 0

    answer = requests.post(
        f"{ui_stack['gateway']}/api/v1/incidents",
        json={
            "category": "04.01",
            "description": "地图测试：垃圾堆积",
            "location": centre_of(ui_stack, grid),
        },
        headers={**api_headers(ui_stack, "county-centre"), "Idempotency-Key": uuid.uuid4().hex},
        timeout=20,
    )
    assert answer.status_code == 201, answer.text
    case = answer.json()["incident"]
    assert case["grid_code"] == grid
    open_map(page, ui_stack)
    assert grid_status(page, grid) == "open"
    assert int(page.inner_text("#legend-cases")) >= 1
    assert int(page.inner_text("#legend-open")) >= 1
    # Cases and grids share the canvas: the marker takes its click, a grid beside it too.
    click_at(page, *centre_of(ui_stack, grid))
    page.wait_for_selector(f'.leaflet-popup a[href="/cases/{case["id"]}"]', timeout=10_000)
    page.click(".leaflet-popup-close-button")
    # A grid without cases: other tests report at their grids' centres, and a click on a
    # case's marker opens the case, not the grid's panel.
    quiet = next(code for code in mine if code != grid and grid_status(page, code) == "none")
    assert click_at(page, *centre_of(ui_stack, quiet)) == "CANVAS"
    page.wait_for_function(
        "code => document.querySelector('#panel-code')?.textContent === code", arg=quiet
    )

    # Overdue: the stage's due moment moved into the past, then the events service's own
    # deadline timer marks it (as tests/integration/events do, through the real timer).
    with events_database(ui_stack["settings"]) as db:
        move_deadlines(db, case, warn_ago=timedelta(minutes=2), due_ago=timedelta(minutes=1))
    wait_for_status(page, ui_stack, grid, "overdue", TIMER_WAIT_S)
    assert int(page.inner_text("#legend-overdue")) >= 1
    assert "有超期案件" in page.inner_text(f'#grid-picker option[value="{grid}"]')

    fresh = requests.get(
        f"{ui_stack['gateway']}/api/v1/incidents/{case['id']}",
        headers=api_headers(ui_stack, "village-centre"),
        timeout=10,
    ).json()
    answer = requests.post(
        f"{ui_stack['gateway']}/api/v1/incidents/{case['id']}/reject",
        json={"reason": "invalid", "expected_version": fresh["version"]},
        headers={**api_headers(ui_stack, "village-centre"), "Idempotency-Key": uuid.uuid4().hex},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    open_map(page, ui_stack)
    assert grid_status(page, grid) == "none"


def test_filters_live_in_the_url_and_a_grid_shows_its_panel(page, ui_stack, console):
    village = village_of(ui_stack)
    operator = CallerContext(user_id="map-test", roles=("centre_operator",), scope=village)
    # The second grid of the village (the first is the demo users', the last test 1's),
    # with one resident flagged high risk, so the panel's group table has a row to check.
    grid = grids_of(ui_stack, village)[1]
    worker = next(m for m in demo_staff(ui_stack["territory"])[grid] if m["role"] == "full_time")
    with ClusterRpcProxy(
        ui_stack["settings"].nameko_config(), context_data=operator.to_context_data()
    ) as rpc:
        resident = rpc.population.list_residents(grid, None, 1)["items"][0]
        rpc.population.flag_group(resident["id"], "elderly_alone", "high", worker["person_id"])
        statistics = {grid: rpc.population.statistics(grid)}
    sign_in(page, ui_stack, "village-centre")
    open_map(page, ui_stack, "?state=reported&urgency=urgent")
    assert page.input_value("#filter-state") == "reported"
    assert page.input_value("#filter-urgency") == "urgent"
    assert "一张图" in page.inner_text("h1")
    page.select_option("#filter-category", "04.01")
    page.fill("#filter-from", "2020-01-01")
    page.click(".map-filters button[type=submit]")
    page.wait_for_selector(READY, timeout=20_000)
    for part in ("state=reported", "urgency=urgent", "category=04.01", "from=2020-01-01"):
        assert part in page.url
    assert page.input_value("#filter-category") == "04.01"
    assert page.input_value("#filter-from") == "2020-01-01"

    assert click_at(page, *centre_of(ui_stack, grid)) == "CANVAS"
    page.wait_for_selector("#panel-code", timeout=10_000)
    panel = page.inner_text("#grid-panel")
    assert page.inner_text("#panel-code") == grid
    staff = demo_staff(ui_stack["territory"])[grid]
    assert all(member["name"] in panel for member in staff)
    assert "网格长" in panel
    assert page.inner_text("#panel-residents") == str(statistics[grid]["residents"])
    assert page.inner_text("#panel-households") == str(statistics[grid]["households"])
    rows = page.locator(".panel-groups tbody tr")
    members = statistics[grid]["group_members"]
    assert rows.count() == len(members)
    shown = {
        risk: sum(int(rows.nth(i).locator("td").nth(n).inner_text()) for i in range(rows.count()))
        for n, risk in enumerate(("high", "medium", "low"))
    }
    assert shown == {
        risk: sum(by_risk.get(risk, 0) for by_risk in members.values())
        for risk in ("high", "medium", "low")
    }
    assert "高风险" in panel
    assert_accessible(page)
    screenshot(page, "map")

    other = next(code for code in grids_of(ui_stack, village) if code != grid)
    page.select_option("#grid-picker", other)
    page.wait_for_function(
        "code => document.querySelector('#panel-code')?.textContent === code", arg=other
    )

    outside = other_townships_grids(ui_stack)[0]
    console.allow(r"status of 404")
    answer = page.goto(f"{ui_stack['gateway']}/map/grids/{outside}")
    assert answer.status == 404


@pytest.mark.parametrize("viewport", ["big-screen"])
def test_the_wall_view_fills_the_big_screen(page, ui_stack):
    sign_in(page, ui_stack, "county-centre")
    open_map(page, ui_stack, "?wall=1")
    assert not page.is_visible(".masthead")
    box = page.locator("#grid-map").bounding_box()
    assert box["width"] > 1300 and box["height"] > 900, box
    assert set(drawn(page)) == set(grids_of(ui_stack, ui_stack["users"]["county-centre"][1]))
    assert_accessible(page)
    screenshot(page, "map-wall")
