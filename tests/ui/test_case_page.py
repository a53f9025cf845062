"""The case page in a real browser: the whole loop (report → accept → register →
dispatch → sign → feedback with an after-photo uploaded in the browser → verify → close),
a case out of scope is "not found", and a stale version is shown, never overwritten."""

from __future__ import annotations

import io
import uuid
from datetime import datetime

import pytest
import requests
from PIL import Image

from devstack.processes import wait_until
from gridwork_common.clock import CHINA_TIME
from tests.ui.conftest import (
    CSP_LISTENER,
    VIEWPORTS,
    assert_accessible,
    pinned_context,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.ui

WAIT_S = 30


# ----------------------------------------------------------------------------- helpers


def api_login(stack: dict, username: str) -> dict:
    answer = requests.post(
        f"{stack['gateway']}/api/v1/auth/token",
        json={"grant_type": "password", "username": username, "password": stack["password"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def grid_centre(stack: dict, grid_code: str) -> list[float]:
    (feature,) = [f for f in stack["territory"]["features"] if f["properties"]["code"] == grid_code]
    ring = feature["geometry"]["coordinates"][0][:-1]
    return [sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)]


def report(stack: dict, username: str, description: str, **where) -> dict:
    answer = requests.post(
        f"{stack['gateway']}/api/v1/incidents",
        json={"category": "04.01", "description": description, **where},
        headers={**api_login(stack, username), "Idempotency-Key": uuid.uuid4().hex},
        timeout=20,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["incident"]


def api_case(stack: dict, case_id: str, username: str = "county-centre") -> dict:
    answer = requests.get(
        f"{stack['gateway']}/api/v1/incidents/{case_id}",
        headers=api_login(stack, username),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


OPEN_STATES = ("reported", "accepted", "registered", "dispatched", "handling", "returned",
               "awaiting_verification", "verified", "suspended")  # fmt: skip


def open_cases_in(stack: dict, grid_code: str) -> int:
    """A grid's open cases through the API (what the map colours a grid by)."""
    answer = requests.get(
        f"{stack['gateway']}/api/v1/incidents/counts",
        params={"territory": grid_code},
        headers=api_login(stack, "county-centre"),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return sum(answer.json()["by_state"].get(state, 0) for state in OPEN_STATES)


def map_page_present(page, stack: dict) -> bool:
    """The map page is another engineer's, built alongside: asserted through when there."""
    return page.request.get(f"{stack['gateway']}/map").status != 404


def from_queue(page, stack: dict, kind: str, case_id: str) -> None:
    """Open the case page from the caller's queue (its row's link)."""
    page.goto(f"{stack['gateway']}/cases/queues/{kind}?sort=-reported&size=100")
    with page.expect_navigation():
        page.click(f'table a[href$="/cases/{case_id}"]')
    assert page.url == case_url(stack, case_id)


def map_counts(page, stack: dict) -> dict:
    """What the map page colours the grids by (its own JSON, in the page's session)."""
    answer = page.request.get(f"{stack['gateway']}/map/cases.json")
    assert answer.ok, answer.text()
    return answer.json()["grids"]


def map_colour(page, stack: dict, grid: str) -> str:
    page.goto(f"{stack['gateway']}/map")
    page.wait_for_selector(".grid-map--ready", timeout=20_000)
    # drawn on a canvas: the grid picker lists each drawn grid with its state
    return page.get_attribute(f'#grid-picker option[value="{grid}"]', "data-status")


def closed_on_chart(page, stack: dict, grid: str, month: str) -> str:
    """The grid's "cases closed" in `month` as its assessment chart page shows it."""
    page.goto(f"{stack['gateway']}/assessment/chart/{grid}?indicator=cases_closed&until={month}")
    last = page.locator("#chart-values tbody tr").last
    assert last.locator("td").first.inner_text().strip() == month
    return last.locator("td").nth(1).inner_text().strip()


def cases_closed(stack: dict, grid_code: str, period: str) -> int:
    answer = requests.get(
        f"{stack['gateway']}/api/v1/assessment/indicators",
        params={"territory": grid_code, "period": period},
        headers=api_login(stack, "county-centre"),
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["cases_closed"]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (20, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def case_url(stack: dict, case_id: str) -> str:
    return f"{stack['gateway']}/cases/{case_id}"


def act(page, action: str, fill=None):
    """Submit an action's form on the case page; the answer of the page it leads to."""
    form = page.locator(f"#action-{action}")
    if fill:
        fill(form)
    with page.expect_navigation() as navigation:
        form.locator("button[type=submit]").click()
    return navigation.value


def sign_out(page) -> None:
    with page.expect_navigation():
        page.click("header .link-button")


def timeline_steps(page) -> list[str]:
    return [text.strip() for text in page.locator("#timeline .step").all_inner_texts()]


def village_of(stack: dict) -> str:
    return stack["users"]["village-centre"][1]


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("viewport", ["desktop"])
def test_the_journey_from_report_to_closure_through_the_case_page(page, ui_stack):
    grid = ui_stack["users"]["grid-worker"][1]
    village = village_of(ui_stack)
    case = report(
        ui_stack, "grid-worker", "旅程：路口垃圾堆放", location=grid_centre(ui_stack, grid)
    )
    page.on("dialog", lambda dialog: dialog.accept())

    # The village centre opens it from its queue, accepts, registers and dispatches it.
    sign_in(page, ui_stack, "village-centre")
    open_before = open_cases_in(ui_stack, grid)
    with_map = map_page_present(page, ui_stack)
    if with_map:
        assert map_counts(page, ui_stack)[grid]["open"] == open_before
        assert map_colour(page, ui_stack, grid) in ("open", "overdue")
    from_queue(page, ui_stack, "to-accept", case["id"])
    assert page.inner_text("#case-state") == "已上报"
    assert "受理" in page.inner_text("#action-accept legend")
    assert page.locator("#action-sign").count() == 0  # a department's step, not the centre's
    assert page.locator("#case-map path.leaflet-interactive").count() >= 1  # the grid
    act(page, "accept", lambda form: form.locator("textarea").fill("情况属实"))
    assert page.inner_text("#case-state") == "已受理"
    assert "已完成：受理" in page.inner_text("#case-notice")
    act(page, "register")
    assert page.inner_text("#case-state") == "已立案"
    committee = f"{village}-committee"
    act(page, "dispatch", lambda form: form.locator("select").select_option(committee))
    assert page.inner_text("#case-state") == "已派遣"
    assert committee in page.inner_text("#case-facts")
    sign_out(page)

    # The village committee's handler signs it and gives feedback with an after-photo.
    sign_in(page, ui_stack, "village-committee")
    from_queue(page, ui_stack, "to-sign", case["id"])
    assert page.locator("#action-accept").count() == 0
    act(page, "sign")
    assert page.inner_text("#case-state") == "处置中"
    act(
        page,
        "feedback",
        lambda form: (
            form.locator("textarea").fill("垃圾已清运"),
            form.locator("input[type=file]").set_input_files(
                {"name": "after.png", "mimeType": "image/png", "buffer": png()}
            ),
        ),
    )
    assert page.inner_text("#case-state") == "待核查"
    # The thumbnail is made just after the photo is stored: a placeholder until then.
    shown = "#photos-after img, #photos-after .thumbnail-pending"
    assert page.locator(shown).count() == 1
    wait_until(
        lambda: page.reload() and page.locator("#photos-after img").count() == 1,
        30,
        "the after-photo's thumbnail on the case page",
        interval_s=0.5,
    )
    page.wait_for_function("document.querySelector('#photos-after img').naturalWidth > 0")
    assert "存储时完整" in page.inner_text("#photos-after")
    # Full size on click: the original, as uploaded, from the media service's link.
    original = page.get_attribute("#photos-after a.full-size", "href")
    assert requests.get(original, timeout=10).content == png()
    sign_out(page)

    # Verified through the API (the phone app's step), closed from the case page.
    verified = requests.post(
        f"{ui_stack['gateway']}/api/v1/incidents/{case['id']}/verify",
        json={"expected_version": api_case(ui_stack, case["id"])["version"], "passed": True},
        headers={**api_login(ui_stack, "grid-worker"), "Idempotency-Key": uuid.uuid4().hex},
        timeout=10,
    )
    assert verified.status_code == 200, verified.text
    sign_in(page, ui_stack, "village-centre")
    reported = datetime.fromisoformat(verified.json()["reported_at"]).astimezone(CHINA_TIME)
    closed_before = closed_on_chart(page, ui_stack, grid, reported.strftime("%Y-%m"))
    page.goto(case_url(ui_stack, case["id"]))
    assert page.inner_text("#case-state") == "已核查"
    act(page, "close")
    assert page.inner_text("#case-state") == "已结案"
    closed = api_case(ui_stack, case["id"])
    assert closed["state"] == "closed"
    steps = timeline_steps(page)
    assert steps == ["上报", "受理", "立案", "派遣", "签收", "反馈", "核查", "结案"]
    # Times in China time: the timeline shows the report's instant at UTC+8.
    assert reported.strftime("%Y-%m-%d %H:%M:%S") in page.inner_text("#timeline li >> nth=0")
    assert "village-committee" in page.inner_text("#timeline")
    assert_accessible(page)
    screenshot(page, "case-closed")

    # The map (its page when there, and the API) and the grid's indicators (the
    # assessment chart page, and the API).
    open_after = open_cases_in(ui_stack, grid)
    assert open_after == open_before - 1
    if with_map:
        assert map_counts(page, ui_stack).get(grid, {}).get("open", 0) == open_after
        assert map_colour(page, ui_stack, grid) == ("none" if open_after == 0 else "open")
    period = datetime.fromisoformat(closed["closed_at"]).astimezone(CHINA_TIME).strftime("%Y-%m")
    shown = {}

    def chart_moved() -> bool:
        shown["closed"] = closed_on_chart(page, ui_stack, grid, period)
        return shown["closed"] != closed_before

    wait_until(chart_moved, WAIT_S, "the grid's cases closed on the chart", interval_s=2)
    assert int(shown["closed"]) == int(closed_before) + 1 == cases_closed(ui_stack, grid, period)


def test_a_reported_case_page_offers_its_steps_and_merges_a_duplicate(page, ui_stack):
    """At both sizes: the forms of a reported case, and a second report of the same thing
    nearby merged into it from the duplicates list."""
    grid = ui_stack["users"]["grid-worker"][1]
    where = {"location": grid_centre(ui_stack, grid)}
    case = report(ui_stack, "grid-worker", "页面：电线杆倾斜", **where)
    duplicate = report(ui_stack, "grid-worker", "页面：电线杆倾斜（重复上报）", **where)
    sign_in(page, ui_stack, "village-centre")
    page.goto(case_url(ui_stack, case["id"]))
    assert page.inner_text("h1").startswith(f"案件 {case['id']}")
    assert "垃圾乱堆乱放" in page.inner_text("#case-facts")  # the category by name
    forms = page.locator("form.action-form legend").all_inner_texts()
    assert "受理" in forms and "不予受理" in forms
    assert "结案" not in forms and "签收" not in forms  # not in this state, not a centre's
    assert page.locator("#timeline li").count() == 1
    candidate = page.locator("#duplicates li", has_text=duplicate["id"])
    assert candidate.count() == 1
    assert_accessible(page)
    screenshot(page, "case-reported")

    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        candidate.locator("button[type=submit]").click()
    assert f"案件 {duplicate['id']} 已合并到本案件" in page.inner_text("main")
    assert page.locator("#duplicates li", has_text=duplicate["id"]).count() == 0
    merged = api_case(ui_stack, duplicate["id"])
    assert merged["state"] == "rejected" and merged["duplicate_of"] == case["id"]
    assert duplicate["id"] in api_case(ui_stack, case["id"])["merged_ids"]


@pytest.mark.parametrize("viewport", ["desktop"])
def test_a_case_out_of_scope_is_not_found(page, ui_stack, console):
    village = village_of(ui_stack)
    elsewhere = sorted(
        f["properties"]["code"]
        for f in ui_stack["territory"]["features"]
        if len(f["properties"]["code"]) == 15 and not f["properties"]["code"].startswith(village)
    )[-1]
    case = report(ui_stack, "county-centre", "范围外：井盖缺失", grid_code=elsewhere)
    console.allow(r"status of 404")
    sign_in(page, ui_stack, "village-centre")
    answer = page.goto(case_url(ui_stack, case["id"]))
    assert answer.status == 404
    assert page.inner_text("h1") == "未找到"
    assert case["id"] not in page.content()
    missing = page.goto(case_url(ui_stack, "no-such-case"))
    assert missing.status == 404 and page.inner_text("h1") == "未找到"
    api = requests.get(
        f"{ui_stack['gateway']}/api/v1/incidents/{case['id']}",
        headers=api_login(ui_stack, "village-centre"),
        timeout=10,
    )
    assert api.status_code == 404


@pytest.mark.parametrize("viewport", ["desktop"])
def test_a_stale_version_is_shown_not_overwritten(page, ui_stack, browser, console):
    grid = ui_stack["users"]["grid-worker"][1]
    case = report(ui_stack, "grid-worker", "并发：占道经营", location=grid_centre(ui_stack, grid))
    width, height = VIEWPORTS["desktop"]
    other_context = pinned_context(
        browser,
        ui_stack,
        viewport={"width": width, "height": height},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    other_context.add_init_script(CSP_LISTENER)
    other = other_context.new_page()
    try:
        sign_in(page, ui_stack, "village-centre")
        sign_in(other, ui_stack, "village-centre")
        page.goto(case_url(ui_stack, case["id"]))
        other.goto(case_url(ui_stack, case["id"]))
        # The other operator rejects it first ...
        other.on("dialog", lambda dialog: dialog.accept())
        act(
            other,
            "reject",
            lambda form: (
                form.locator("select").select_option("invalid"),
                form.locator("textarea").fill("不属实"),
            ),
        )
        assert other.inner_text("#case-state") == "不予受理"
        # ... then this one, still looking at version 1, accepts.
        console.allow(r"status of 409")
        answer = act(page, "accept", lambda form: form.locator("textarea").fill("我来受理"))
        assert answer.status == 409
        alert = page.inner_text("#case-alert")
        assert "其他人已修改" in alert and "第 1 版" in alert
        assert page.inner_text("#case-state") == "不予受理"  # the fresh case
        assert page.inner_text("#case-version") == "2"
        assert "无效上报" in page.inner_text("#case-facts")  # the other operator's reason
        assert page.locator("#action-accept").count() == 0
        fresh = api_case(ui_stack, case["id"])
        assert fresh["state"] == "rejected" and fresh["version"] == 2
        assert timeline_steps(page) == ["上报", "不予受理"]  # no acceptance over it
        assert_accessible(page)
        screenshot(page, "case-stale")
    finally:
        other_context.close()
