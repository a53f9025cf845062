"""The grid worker's phone app (/app/) in Debian's chromium at phone size, with touch, a
fake GPS position and the network switched off and on (`context.set_offline`): what is
made offline is kept on the phone and sent once when the connection is back, a refused
item says why and can be corrected, a handled case is verified from the phone, and the
first load stays light, accessible and within the CSP. The offline journey goes on: the
worker's live scorecard counts the synced patrol, and the reported case is taken on the
command centre's case page, handled, and verified on the phone.

The patrol steps need the patrols API (`/api/v1/patrols`, built alongside).
"""

from __future__ import annotations

import gzip
import re
import uuid
from datetime import datetime

import pytest

from devstack.processes import wait_until
from gridwork_common.clock import CHINA_TIME, china_today
from tests.ui.conftest import SCREENSHOTS, assert_accessible, screenshot, sign_in
from tests.ui.phone_helpers import (
    api,
    desktop_page,
    go,
    grid_centre,
    handle,
    handled_case,
    incidents_described,
    jpeg,
    member_to_visit,
    move_to,
    open_app,
    phone_page,
    wait_until_sent,
    waiting_banner,
)
from tests.ui.test_case_page import act as act_on_case_page
from tests.ui.test_case_page import case_url

pytestmark = pytest.mark.ui

FIRST_LOAD_LIMIT = 300 * 1024  # HTML, CSS and JS of the first load, compressed
OFFLINE = r"ERR_INTERNET_DISCONNECTED"  # Chromium's own report of the emulated outage
POINTS_AT_LEAST = "n => Number(document.querySelector('#patrol-points').textContent) >= n"
METRES_EAST = 0.0003  # about 29 m of longitude at the demo county's latitude


def phone_screenshot(page, name: str) -> None:
    """The whole screen, and the top of it as the phone shows it (`-small`: the README's
    docs/screenshots/ are copies of these)."""
    path = screenshot(page, f"phone-{name}")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"phone-{name}-small.png"), scale="css")
    assert path.exists()


def test_made_offline_is_sent_once_when_back_online(browser, ui_stack, console):
    grid = ui_stack["users"]["grid-worker"][1]
    centre = grid_centre(ui_stack, grid)
    member = member_to_visit(ui_stack, "grid-worker")
    description = f"手机离线上报：井盖缺失 {uuid.uuid4().hex[:6]}"
    notes = f"走访：老人身体健康 {uuid.uuid4().hex[:6]}"
    patrols_before = my_patrols(ui_stack)
    scored_before = {"period": this_month(ui_stack), **patrol_score(ui_stack, this_month(ui_stack))}
    console.allow(OFFLINE)

    with phone_page(browser, console, ui_stack, centre) as page:
        sign_in(page, ui_stack, "grid-worker")
        open_app(page, ui_stack)
        visit_row = page.locator("#visits-list li", has_text="独居老人").filter(
            has=page.locator(f'a[href="#visit/{member["id"]}"]')
        )
        assert "高风险" in visit_row.inner_text()
        assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "今日"
        phone_screenshot(page, "today")
        assert_accessible(page)

        # The connection goes; the app still opens (the service worker's shell).
        page.context.set_offline(True)
        page.reload()
        page.wait_for_selector("body[data-ready=today]")
        assert page.locator("#today-offline").is_visible()

        # A patrol starts and the worker walks east.
        go(page, "patrol")
        page.locator("#patrol-start").tap()
        page.wait_for_selector("#patrol-stop:visible")
        for step in range(1, 4):
            move_to(page, [centre[0] + step * METRES_EAST, centre[1]])
            page.wait_for_function(POINTS_AT_LEAST, arg=step)

        # An incident with two photos, reported during the patrol.
        go(page, "report")
        page.set_input_files("#report-photo-input", jpeg((180, 30, 30)))
        page.set_input_files("#report-photo-input", jpeg((30, 30, 180)))
        assert page.locator("#report-photos img").count() == 2
        page.wait_for_selector("#report-map .leaflet-marker-icon")
        assert "离线" in page.inner_text("#report-place")
        assert page.locator("#report-patrol").is_visible()
        page.select_option("#report-category", "04.01")
        page.fill("#report-description", description)
        phone_screenshot(page, "report")
        assert_accessible(page)
        page.locator("#report-form button[type=submit]").tap()
        page.wait_for_selector("body[data-ready=today]")

        # A visit from the worklist kept from before the outage.
        page.locator(f'a[href="#visit/{member["id"]}"]').tap()
        page.wait_for_selector("body[data-ready=visit]")
        assert "独居老人" in page.inner_text("#visit-member")
        page.fill("#visit-notes", notes)
        page.locator("#visit-form button[type=submit]").tap()
        page.wait_for_selector("body[data-ready=today]")

        go(page, "patrol")
        move_to(page, [centre[0] + 4 * METRES_EAST, centre[1]])
        page.wait_for_function(POINTS_AT_LEAST, arg=4)
        phone_screenshot(page, "patrol")
        page.locator("#patrol-stop").tap()
        page.wait_for_selector("#patrol-start:visible")

        # Closing and opening the app loses nothing.
        page.reload()
        page.wait_for_selector("body[data-ready=patrol]")
        waiting = waiting_banner(page)
        # patrol start, track piece, report, visit, patrol end
        assert waiting == "5 条待发送", waiting

        # Back online: the first report's answer is lost on the way back (the server made
        # the case); the retry with the same Idempotency-Key gets the same case.
        lost = {"count": 0}

        def lose_first_answer(route):
            if route.request.method == "POST" and lost["count"] == 0:
                lost["count"] += 1
                route.fetch()
                route.abort("internetdisconnected")
            else:
                route.continue_()

        page.route(re.compile(r".*/api/v1/incidents$"), lose_first_answer)
        page.context.set_offline(False)
        page.wait_for_function("() => !document.body.dataset.syncing")
        page.locator("#send-now").click()
        wait_until_sent(page)
        assert lost["count"] == 1

    (case,) = incidents_described(ui_stack, "grid-worker", description)
    assert case["location"] and case["grid_code"] == grid
    photos = api(ui_stack, "grid-worker", "GET", f"/incidents/{case['id']}/media")
    assert len(photos["before"]) == 2
    assert all(photo["state"] == "stored" for photo in photos["before"])
    visits = api(ui_stack, "grid-worker", "GET", f"/groups/{member['id']}/visits")["items"]
    assert [visit["notes"] for visit in visits] == [notes]
    (patrol,) = [p for p in my_patrols(ui_stack).values() if p["id"] not in patrols_before]
    assert patrol["state"] == "finished"
    # The case names its patrol; the patrol lists the case once the report's event is in.
    assert case["patrol_id"] == patrol["id"]
    wait_until(
        lambda: case["id"] in my_patrols(ui_stack)[patrol["id"]]["incident_ids"],
        30,
        "the patrol listing its incident",
    )
    assert patrol["visit_ids"] == [visits[0]["id"]]
    assert patrol["point_count"] >= 4
    assert patrol["distance_m"] > 50

    # The worker's scorecard for the month the patrol was walked counts it, once the
    # population service's `patrol.finished` has reached the assessment service.
    period = month_of(patrol["started_at"])
    before = scored_before if scored_before["period"] == period else {}
    scored = {}

    def walked() -> float:
        return scored["patrol_distance_m"] - before.get("patrol_distance_m", 0)

    # At least: another test's patrol by the same worker may still be arriving (the API
    # above already showed this one was sent once).
    def scorecard_counts_the_patrol() -> bool:
        scored.update(patrol_score(ui_stack, period))
        moved = scored["patrols"] > before.get("patrols", 0)
        return moved and walked() >= patrol["distance_m"] - 1

    try:
        wait_until(scorecard_counts_the_patrol, 30, "the worker's scorecard counting the patrol")
    finally:
        print(f"scorecard {period}: before {before}, now {scored}; patrol {patrol['distance_m']} m")
    assert scored["patrols"] >= before.get("patrols", 0) + 1 and walked() > 0

    # The case runs through the loop: the village centre takes it on the command centre's
    # case page, its committee handles it, and the worker verifies it on the phone.
    dispatched = dispatch_on_case_page(browser, console, ui_stack, case)
    handle(ui_stack, dispatched)
    with phone_page(browser, console, ui_stack, centre) as page:
        sign_in(page, ui_stack, "grid-worker")
        open_app(page, ui_stack)
        row = page.locator("#verify-list li", has_text=description)
        row.get_by_role("link", name="核查").tap()
        page.wait_for_selector("body[data-ready=verify]")
        page.locator("#verify-pass").tap()
        page.wait_for_selector("body[data-ready=today]")
        wait_until_sent(page)
    assert api(ui_stack, "county-centre", "GET", f"/incidents/{case['id']}")["state"] == "verified"


def dispatch_on_case_page(browser, console, stack: dict, case: dict) -> dict:
    """The village centre accepts, registers and dispatches the case to its committee
    from the case page, in a desktop browser; the case as the API then has it."""
    committee = f"{stack['users']['village-centre'][1]}-committee"
    with desktop_page(browser, console, stack) as page:
        page.on("dialog", lambda dialog: dialog.accept())
        sign_in(page, stack, "village-centre")
        page.goto(case_url(stack, case["id"]))
        assert page.inner_text("#case-state") == "已上报"
        act_on_case_page(page, "accept", lambda form: form.locator("textarea").fill("情况属实"))
        act_on_case_page(page, "register")
        act_on_case_page(
            page, "dispatch", lambda form: form.locator("select").select_option(committee)
        )
        assert page.inner_text("#case-state") == "已派遣"
    dispatched = api(stack, "county-centre", "GET", f"/incidents/{case['id']}")
    assert (dispatched["state"], dispatched["department"]) == ("dispatched", committee)
    return dispatched


def my_patrols(stack: dict) -> dict[str, dict]:
    answer = api(stack, "grid-worker", "GET", "/patrols", params={"worker": "me", "limit": 100})
    return {patrol["id"]: patrol for patrol in answer["items"]}


def this_month(stack: dict) -> str:
    """The month in China by the stack's pinned clock."""
    return china_today(stack["clock"]).strftime("%Y-%m")


def month_of(instant: str) -> str:
    return datetime.fromisoformat(instant).astimezone(CHINA_TIME).strftime("%Y-%m")


def patrol_score(stack: dict, period: str, worker: str = "grid-worker") -> dict:
    """The worker's patrol figures on the live grid-worker board as the county's leader
    reads it (people are ranked for county-wide leaders and administrators only), zero
    while the worker is not on it."""
    board = api(
        stack, "leader", "GET", "/assessment/scorecards",
        params={"level": "worker", "period": period},
    )  # fmt: skip
    (item,) = [i for i in board["items"] if i["subject"] == worker] or [{"indicators": {}}]
    return {key: item["indicators"].get(key, 0) for key in ("patrols", "patrol_distance_m")}


def test_a_refused_report_says_why_and_can_be_corrected(browser, ui_stack, console):
    grid = ui_stack["users"]["grid-worker"][1]
    centre = grid_centre(ui_stack, grid)
    far_away = [centre[0] + 3.0, centre[1] + 3.0]  # well outside the county
    description = f"手机上报：路灯损坏 {uuid.uuid4().hex[:6]}"
    console.allow(OFFLINE)
    console.allow(r"status of 422")  # the refusal this test causes

    with phone_page(browser, console, ui_stack, far_away) as page:
        sign_in(page, ui_stack, "grid-worker")
        open_app(page, ui_stack)
        go(page, "report")  # the catalogue and grids are kept for offline use
        page.context.set_offline(True)
        page.reload()
        page.wait_for_selector("body[data-ready=report]")
        page.set_input_files("#report-photo-input", jpeg((90, 90, 90)))
        page.wait_for_selector("#report-map .leaflet-marker-icon")
        page.select_option("#report-category", "04.01")
        page.fill("#report-description", description)
        page.locator("#report-form button[type=submit]").tap()
        page.wait_for_selector("body[data-ready=today]")

        page.context.set_offline(False)
        page.locator("#send-now").click()
        refused = page.locator("#outbox-list li.refused")
        refused.wait_for()
        assert "未被接受" in refused.inner_text()
        assert "不在本县范围内" in refused.inner_text()  # the service's reason, field location
        assert_accessible(page)
        assert incidents_described(ui_stack, "grid-worker", description) == []

        # Corrected: the pin goes where the worker is now, inside the grid.
        move_to(page, centre)
        refused.get_by_role("button", name="修改").tap()
        page.wait_for_selector("body[data-ready=report]")
        assert page.input_value("#report-description") == description
        assert page.locator("#report-photos img").count() == 1
        page.locator("#report-locate").tap()
        page.wait_for_function(
            "() => document.querySelector('#report-place').textContent.startsWith('所在网格')"
        )
        page.locator("#report-form button[type=submit]").tap()
        page.wait_for_selector("body[data-ready=today]")
        wait_until_sent(page)

    (case,) = incidents_described(ui_stack, "grid-worker", description)
    assert case["grid_code"] == grid
    assert len(api(ui_stack, "grid-worker", "GET", f"/incidents/{case['id']}/media")["before"]) == 1


def test_the_worker_verifies_a_handled_case_on_the_phone(browser, ui_stack, console):
    grid = ui_stack["users"]["grid-worker"][1]
    description = f"待核查：垃圾清运 {uuid.uuid4().hex[:6]}"
    case = handled_case(ui_stack, description)

    with phone_page(browser, console, ui_stack, grid_centre(ui_stack, grid)) as page:
        sign_in(page, ui_stack, "grid-worker")
        open_app(page, ui_stack)
        row = page.locator("#verify-list li", has_text=description)
        row.get_by_role("link", name="核查").tap()
        page.wait_for_selector("body[data-ready=verify]")
        assert description in page.inner_text("#verify-case")
        for photos in ("#verify-before img", "#verify-after img"):
            page.wait_for_function(
                "s => [...document.querySelectorAll(s)].some(img => img.naturalWidth > 0)",
                arg=photos,
            )
        assert_accessible(page)
        phone_screenshot(page, "verify")

        # Sent back with a reason and a photo…
        page.locator("#verify-fail").tap()
        assert page.locator("#verify-reason-error").is_visible()
        page.fill("#verify-reason", "垃圾仍未清理干净")
        page.set_input_files("#verify-photo-input", jpeg((120, 110, 20)))
        page.locator("#verify-fail").tap()
        page.wait_for_selector("body[data-ready=today]")
        wait_until_sent(page)
        returned = api(ui_stack, "county-centre", "GET", f"/incidents/{case['id']}")
        assert (returned["state"], returned["rework_count"]) == ("handling", 1)
        after = api(ui_stack, "grid-worker", "GET", f"/incidents/{case['id']}/media")["after"]
        assert "verification" in {photo["purpose"] for photo in after}

        # …handled again, and passed.
        handle(ui_stack, returned)
        page.reload()
        page.wait_for_selector("body[data-ready=today]")
        page.locator("#verify-list li", has_text=description).get_by_role("link").tap()
        page.wait_for_selector("body[data-ready=verify]")
        page.locator("#verify-pass").tap()
        page.wait_for_selector("body[data-ready=today]")
        wait_until_sent(page)
    assert api(ui_stack, "county-centre", "GET", f"/incidents/{case['id']}")["state"] == "verified"


def test_the_first_load_is_light_and_the_screens_accessible(browser, ui_stack, console):
    grid = ui_stack["users"]["grid-worker"][1]
    with phone_page(browser, console, ui_stack, grid_centre(ui_stack, grid)) as page:
        sign_in(page, ui_stack, "grid-worker")
        loaded = []
        page.on("response", lambda response: loaded.append(response))
        page.goto(f"{ui_stack['gateway']}/app/")
        page.wait_for_selector("body[data-ready=today]")
        page.wait_for_load_state("load")
        shell = [
            response
            for response in loaded
            if response.request.resource_type in ("document", "script", "stylesheet")
            and response.ok
        ]
        kinds = {response.request.resource_type for response in shell}
        assert kinds == {"document", "script", "stylesheet"}
        raw = sum(len(response.body()) for response in shell)
        # What a compressing server or proxy sends; the gateway itself sends them as is.
        compressed = sum(len(gzip.compress(response.body())) for response in shell)
        assert compressed <= raw
        assert compressed <= FIRST_LOAD_LIMIT, f"{compressed} bytes compressed ({raw} raw)"
        assert raw <= FIRST_LOAD_LIMIT, f"{raw} bytes uncompressed"

        # Installable: a manifest with icons, a service worker in control.
        manifest = page.request.get(f"{ui_stack['gateway']}/app/manifest.webmanifest").json()
        assert manifest["display"] == "standalone" and manifest["lang"] == "zh-CN"
        assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        csp = page.request.get(f"{ui_stack['gateway']}/app/").headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp

        assert_accessible(page)
        for screen in ("report", "patrol"):
            go(page, screen)
            assert_accessible(page)
