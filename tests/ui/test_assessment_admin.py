"""Assessment and administration pages in a real browser: a leader's township and
village rankings for a chosen month (stars, the bottom of the ranking marked as the
service ranks it), one node's indicators charted month by month, the integrity flags and
the monthly bulletin; the administrator creates a user who can then sign in and loads a
year's holiday notice (a bad date named on its field); everyone else is refused.

The work traces are CloudEvents published as the events service publishes them, dated
in months chosen here (2026-03 to 2026-05), so nothing depends on today's date."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
from kombu import Connection, Exchange, Producer

from devstack.processes import wait_until
from gridwork_common.events import new_event
from tests.ui.conftest import assert_accessible, pinned_context, screenshot, sign_in

pytestmark = pytest.mark.ui

MONTHS = ("2026-03", "2026-04", "2026-05")
PERIOD = "2026-05"
TIE_MONTH = "2025-09"  # outside the charts' six months up to PERIOD
CHINA = timezone(timedelta(hours=8))


def _villages(stack: dict) -> dict[str, str]:
    """village code -> its first grid code, for every village of the demo county."""
    codes = sorted(f["properties"]["code"] for f in stack["territory"]["features"])
    villages = [code for code in codes if len(code) == 12]
    return {v: next(c for c in codes if len(c) == 15 and c.startswith(v)) for v in villages}


def _incident(action: str, incident_id: str, grid: str, at: datetime) -> tuple[str, dict]:
    event = new_event(
        source=f"/counties/{grid[:6]}/events",
        routing_key=f"incident.{action}",
        subject=grid,
        data={"incident_id": incident_id, "grid_code": grid, "urgency": "normal"},
        now=at,
        extensions={"department": "none"},
    )
    route = f"incident.{action}.none.{grid[:6]}.{grid[:9]}.{grid[:12]}.{grid}"
    return route, event.to_json_dict()


def _api(stack: dict, username: str) -> requests.Session:
    client = requests.Session()
    token = client.post(
        f"{stack['gateway']}/api/v1/auth/token",
        json={"grant_type": "password", "username": username, "password": stack["password"]},
        timeout=10,
    )
    assert token.status_code == 200, token.text
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def _board(api: requests.Session, stack: dict, level: str, period: str) -> dict:
    answer = api.get(
        f"{stack['gateway']}/api/v1/assessment/scorecards",
        params={"level": level, "period": period},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _publish(stack: dict, exchange_name: str, routed: list[tuple[str, dict]]) -> None:
    """CloudEvents published on a service's exchange, as that service publishes them."""
    with Connection(stack["settings"].nameko_config()["AMQP_URI"]) as connection:
        producer = Producer(connection.default_channel, serializer="json")
        exchange = Exchange(exchange_name, type="topic", durable=True)
        for route, body in routed:
            producer.publish(body, exchange=exchange, routing_key=route, declare=[exchange])


@pytest.fixture(scope="module")
def traces(ui_stack) -> dict[str, int]:
    """Village k (in code order) reports k+1 cases in each of MONTHS, closes k of them and
    lets the last run overdue (closure and on-time rates k/(k+1): a score rising with k);
    returns {village: cases reported a month}, once the assessment service counted all."""
    villages = _villages(ui_stack)
    reported = {}
    messages = []
    for k, (village, grid) in enumerate(sorted(villages.items())):
        reported[village] = k + 1
        for month in MONTHS:
            year, number = (int(part) for part in month.split("-"))
            at = datetime(year, number, 12, 10, 0, tzinfo=CHINA)
            for n in range(k + 1):
                incident_id = f"ui-assessment-{month}-{village}-{n}"
                messages.append(_incident("reported", incident_id, grid, at))
                later = at + timedelta(hours=3)
                if n < k:
                    messages.append(_incident("closed", incident_id, grid, later))
                else:  # the one left open ran out of time: lower rates for fewer cases
                    messages.append(_incident("overdue", incident_id, grid, later))
    # and one photo stored for two residents' records in May: an integrity flag
    photo = {"sha256": "ab" * 32, "uploader": "grid-worker"}
    media = [
        new_event(
            source=f"/counties/{grid[:6]}/media",
            routing_key="media.stored",
            subject=owner,
            now=datetime(2026, 5, 20, 9, 0, tzinfo=CHINA),
            data={**photo, "media_id": owner, "owner": {"kind": "membership", "id": owner}},
        ).to_json_dict()
        for owner in ("ui-membership-1", "ui-membership-2")
    ]
    _publish(ui_stack, "events.events", messages)
    _publish(ui_stack, "media.events", [("media.stored", body) for body in media])
    leader = _api(ui_stack, "leader")

    def counted() -> bool:
        for month in MONTHS:
            items = _board(leader, ui_stack, "village", month)["items"]
            found = {i["subject"]: i["indicators"]["cases_reported"] for i in items}
            if found != reported:
                return False
        return True

    wait_until(counted, 60, "the assessment service to count the published cases")
    wait_until(
        lambda: leader.get(
            f"{ui_stack['gateway']}/api/v1/assessment/integrity-flags",
            params={"period": PERIOD},
            timeout=30,
        ).json()["items"],
        30,
        "the reused photo to be flagged",
    )
    return reported


def _ranking(page) -> list[dict]:
    rows = page.locator("table.ranking tbody tr")
    return [
        {
            "subject": rows.nth(i).get_attribute("data-subject"),
            "stars": int(rows.nth(i).locator("td.stars").get_attribute("data-stars")),
            "shown_stars": rows.nth(i).locator("td.stars span[aria-hidden]").inner_text(),
            "bottom": "bottom" in (rows.nth(i).get_attribute("class") or ""),
            "badge": rows.nth(i).locator(".bottom-badge").count() == 1,
        }
        for i in range(rows.count())
    ]


def test_a_leader_sees_rankings_with_stars_and_the_bottom_and_a_chart_by_month(
    page, ui_stack, traces, viewport
):
    leader = _api(ui_stack, "leader")
    sign_in(page, ui_stack, "leader")
    page.click("nav.main-nav >> text=考核评价")
    assert "考核排名" in page.inner_text("h1")

    for level in ("township", "village"):
        page.select_option("#level", level)
        page.fill("#period", PERIOD)
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state("networkidle")
        expected = _board(leader, ui_stack, level, PERIOD)
        shown = _ranking(page)
        assert [r["subject"] for r in shown] == [i["subject"] for i in expected["items"]]
        assert [r["stars"] for r in shown] == [i["stars"] for i in expected["items"]]
        assert all(r["shown_stars"].count("★") == r["stars"] for r in shown)
        marked = [r["subject"] for r in shown if r["bottom"] and r["badge"]]
        assert sorted(marked) == sorted(expected["bottom"]) and marked
        assert [r["subject"] for r in shown if r["bottom"]] == marked
    # 8 villages with distinct scores: the bottom 3 marked are the last three ranked, the
    # villages that closed the fewest of their cases
    assert len(shown) == len(traces) and len(marked) == 3
    assert marked == [r["subject"] for r in shown[-3:]]
    assert sorted(marked) == sorted(traces)[:3]
    assert_accessible(page)
    screenshot(page, "assessment-ranking")

    # The first village's chart: one point per month, the counts sent for each month.
    village = sorted(traces)[2]
    page.click(f"tr[data-subject='{village}'] a")
    page.wait_for_load_state("networkidle")
    assert re.search(r"/assessment/chart/\d{12}\?until=2026-05$", page.url)
    page.select_option("#months", "6")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#chart svg").count() == 1
    points = page.locator("#chart svg circle.point")
    assert points.count() == 6
    titles = [points.nth(i).locator("title").text_content() for i in range(6)]
    expected_points = [
        f"{month}: {traces[village] if month in MONTHS else 0}"
        for month in ("2025-12", "2026-01", "2026-02", *MONTHS)  # six months up to May
    ]
    assert titles == expected_points
    assert page.locator("#chart svg polyline").count() == 1
    assert_accessible(page)
    screenshot(page, "assessment-chart")

    page.goto(f"{ui_stack['gateway']}/assessment/integrity?period={PERIOD}")
    assert page.inner_text("h1") == "数据真实性提示"
    flag = page.locator("#flags tr[data-signal='reused_photo']").inner_text()
    assert "同一照片用于多条记录" in flag and "grid-worker" in flag
    assert "ui-membership-1" in flag and "ui-membership-2" in flag
    assert_accessible(page)

    page.goto(f"{ui_stack['gateway']}/assessment/bulletin?period={PERIOD}")
    bulletin = page.locator("#bulletin")
    assert "每月通报" in bulletin.inner_text() and bulletin.locator("svg").count() >= 2
    assert_accessible(page)
    screenshot(page, "assessment-bulletin")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_equal_scores_share_a_rank_and_everyone_tied_at_the_cut_is_at_the_bottom(page, ui_stack):
    """In TIE_MONTH the first four villages close both their cases, the other four one
    of two: two groups of equal scores. Ranks 1, 1, 1, 1, 5, 5, 5, 5; the bottom three
    places (6 to 8) fall in the second group, so all four of it are 末位, not three
    picked by code."""
    villages = sorted(_villages(ui_stack).items())
    year, number = (int(part) for part in TIE_MONTH.split("-"))
    at = datetime(year, number, 10, 9, 0, tzinfo=CHINA)
    messages = []
    for k, (village, grid) in enumerate(villages):
        for n in range(2):
            incident_id = f"ui-ties-{village}-{n}"
            messages.append(_incident("reported", incident_id, grid, at))
            finished = "closed" if k < 4 or n == 0 else "overdue"
            messages.append(_incident(finished, incident_id, grid, at + timedelta(hours=2)))
    _publish(ui_stack, "events.events", messages)
    leader = _api(ui_stack, "leader")

    def counted() -> bool:
        items = _board(leader, ui_stack, "village", TIE_MONTH)["items"]
        return len(items) == len(villages) and all(
            i["indicators"]["cases_reported"] == 2 for i in items
        )

    wait_until(counted, 60, "the assessment service to count the tied month")
    expected = _board(leader, ui_stack, "village", TIE_MONTH)
    worse = sorted(village for village, _ in villages[4:])
    assert sorted(expected["bottom"]) == worse

    sign_in(page, ui_stack, "leader")
    page.goto(f"{ui_stack['gateway']}/assessment?level=village&period={TIE_MONTH}")
    cells = page.locator("table.ranking tbody td.rank")
    assert cells.all_inner_texts() == ["1（并列）"] * 4 + ["5（并列）"] * 4
    shown = _ranking(page)
    assert sorted(r["subject"] for r in shown if r["bottom"] and r["badge"]) == worse
    assert [r["stars"] for r in shown[:4]] == [shown[0]["stars"]] * 4  # ties share stars
    assert_accessible(page)


@pytest.mark.parametrize("viewport", ["desktop"])
def test_a_bad_period_is_named_and_another_village_is_not_found(page, ui_stack, console, traces):
    sign_in(page, ui_stack, "village-centre")
    own = ui_stack["users"]["village-centre"][1]
    page.goto(f"{ui_stack['gateway']}/assessment?level=village&period={PERIOD}")
    assert [r["subject"] for r in _ranking(page)] == [own]  # its part of the county ranking

    console.allow(r"status of 4(04|22)")
    page.goto(f"{ui_stack['gateway']}/assessment?level=village&period=2026-13")
    assert page.locator("#period-error").is_visible()
    assert page.get_attribute("#period", "aria-invalid") == "true"

    other = next(v for v in sorted(traces) if v != own)
    answer = page.goto(f"{ui_stack['gateway']}/assessment/chart/{other}?until={PERIOD}")
    assert answer.status == 404


def test_the_administrator_creates_a_user_who_can_sign_in(page, ui_stack, browser, viewport):
    username = f"ui-made-{viewport}"
    village = ui_stack["users"]["village-centre"][1]
    sign_in(page, ui_stack, "admin")
    page.click("nav.main-nav >> text=系统管理")
    page.click("main >> text=用户")
    page.fill("#username", username)
    page.fill("#password", "a-long-password-1")
    page.fill("#name", "新建操作员")
    page.check("input[name=roles][value=centre_operator]")
    page.fill("#scope", village)
    assert_accessible(page)
    page.click("form.admin-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert username in page.inner_text("#created")
    row = page.locator(f"tr[data-username='{username}']")
    assert "综治中心操作员" in row.inner_text() and village in row.inner_text()
    screenshot(page, "admin-users")

    other = pinned_context(browser, ui_stack, locale="zh-CN")
    try:
        newcomer = other.new_page()
        sign_in(newcomer, ui_stack, username, "a-long-password-1")
        assert newcomer.inner_text("#roles") == "综治中心操作员"
        assert newcomer.inner_text("#area").endswith(f"（{village}）")

        # The administrator moves the user to the township and disables the account: the
        # change is saved and the user's session ends (as the API's tokens do).
        township = village[:9]
        page.click(f"tr[data-username='{username}'] a")
        page.fill("#scope", township)
        page.check("input[name=disabled]")
        page.click("form.admin-form button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.is_visible("#saved")
        assert page.input_value("#scope") == township
        assert page.is_checked("input[name=disabled]")
        assert_accessible(page)
        newcomer.goto(f"{ui_stack['gateway']}/")
        assert re.search(r"/login", newcomer.url)
    finally:
        other.close()


def test_the_administrator_loads_a_holiday_notice_and_a_bad_date_is_named(
    page, ui_stack, console, viewport
):
    sign_in(page, ui_stack, "admin")
    page.goto(f"{ui_stack['gateway']}/admin/calendar")
    console.allow(r"status of 422")
    page.fill("#year", "2027")
    page.fill("#holidays", "2027-01-01\n2027-02-30")
    page.fill("#reference", f"测试通知 {viewport}")
    page.click("form.admin-form button[type=submit]")
    assert "2027-02-30" in page.inner_text("#holidays-error")
    assert page.get_attribute("#holidays", "aria-invalid") == "true"
    assert page.input_value("#holidays") == "2027-01-01\n2027-02-30"  # kept to correct
    assert_accessible(page)

    page.fill("#holidays", "2027-01-01\n2027-02-06\n2027-02-07\n2027-02-08")
    page.fill("#makeup_workdays", "2027-02-20")
    page.click("form.admin-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "2027" in page.inner_text("#loaded")
    row = page.locator("tr[data-year='2027']").inner_text()
    assert "县级加载" in row and f"测试通知 {viewport}" in row and "2027-02-20" in row
    assert_accessible(page)
    screenshot(page, "admin-calendar")

    for path in ("/admin/setup", "/admin/webhooks", "/admin/amqp-accounts"):
        page.goto(f"{ui_stack['gateway']}{path}")
        assert_accessible(page)
    screenshot(page, "admin-webhooks")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_administration_is_refused_to_everyone_else(page, ui_stack, console):
    console.allow(r"status of 403")
    sign_in(page, ui_stack, "leader")
    assert "系统管理" not in page.locator("nav.main-nav").inner_text()
    for path in (
        "/admin",
        "/admin/users",
        "/admin/calendar",
        "/admin/webhooks",
        "/admin/amqp-accounts",
    ):
        answer = page.goto(f"{ui_stack['gateway']}{path}")
        assert answer.status == 403, path
    assert_accessible(page)
