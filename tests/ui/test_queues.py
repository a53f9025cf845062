"""The case queues in a real browser and over plain HTTP: a village centre's "to accept"
queue holds its own village's reported cases only, a bulk accept shows each case's own
result (one refused when it changed meanwhile) and moves the others to the next queue,
the CSV export is exactly the filtered set (every page of it, as the API lists it),
sorting by deadline, and a bulk POST without the CSRF token is refused."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from datetime import datetime, timedelta

import pytest
import requests

from gridwork_common.mongo import new_client
from tests.ui.conftest import assert_accessible, screenshot, sign_in
from tests.ui.test_foundation import form_session

pytestmark = pytest.mark.ui

CATEGORY = "03.02"  # 电动车违规充电: owned by the village committee at village level
RETRIES = 4
ROW = re.compile(r'<tr data-case="([0-9a-f]+)" data-due="([^"]*)" data-status="(\w+)"')


def api_login(stack: dict, username: str) -> dict:
    answer = requests.post(
        f"{stack['gateway']}/api/v1/auth/token",
        json={"grant_type": "password", "username": username, "password": stack["password"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


class Api:
    """The JSON API as the demo users, for setting up cases and for the expected lists."""

    def __init__(self, stack: dict):
        self.gateway = stack["gateway"]
        self.stack = stack
        self.tokens: dict[str, dict] = {}

    def headers(self, username: str) -> dict:
        if username not in self.tokens:
            self.tokens[username] = api_login(self.stack, username)
        return self.tokens[username]

    def post(self, username: str, path: str, body: dict) -> requests.Response:
        """A command, retried with the same Idempotency-Key while the stack answers 503
        (as the API says to: a loaded test machine can miss an RPC deadline)."""
        headers = {**self.headers(username), "Idempotency-Key": uuid.uuid4().hex}
        for _ in range(RETRIES):
            answer = requests.post(f"{self.gateway}{path}", json=body, headers=headers, timeout=30)
            if answer.status_code != 503:
                break
            time.sleep(float(answer.headers.get("Retry-After", "1")))
        return answer

    def report(self, username: str = "grid-worker", **fields) -> dict:
        body = {"category": CATEGORY, "description": "楼道内电动车充电", **fields}
        answer = self.post(username, "/api/v1/incidents", body)
        assert answer.status_code == 201, answer.text
        return answer.json()["incident"]

    def act(self, username: str, case: dict, action: str, **fields) -> dict:
        body = {"expected_version": case["version"], **fields}
        answer = self.post(username, f"/api/v1/incidents/{case['id']}/{action}", body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def search(self, username: str, **filters) -> list[dict]:
        """Every page of GET /incidents with these filters."""
        items, cursor = [], None
        while True:
            params = {**filters, "limit": 7, **({"cursor": cursor} if cursor else {})}
            answer = requests.get(
                f"{self.gateway}/api/v1/incidents",
                params=params,
                headers=self.headers(username),
                timeout=20,
            )
            assert answer.status_code == 200, answer.text
            items.extend(answer.json()["items"])
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                return items


@pytest.fixture(scope="module")
def api(ui_stack) -> Api:
    return Api(ui_stack)


@pytest.fixture(scope="module")
def places(ui_stack) -> dict:
    """The village centre's village and a grid of another village."""
    users = ui_stack["users"]
    village = users["village-centre"][1]
    codes = sorted(f["properties"]["code"] for f in ui_stack["territory"]["features"])
    elsewhere = next(c for c in codes if len(c) == 15 and not c.startswith(village))
    return {"village": village, "grid": users["grid-worker"][1], "elsewhere": elsewhere}


@pytest.fixture(scope="module")
def village_cases(api, places) -> dict:
    """Reported cases: two in the village centre's village, one in another village."""
    return {
        "ours": [api.report(), api.report(urgency="urgent")],
        "other": api.report("county-centre", grid_code=places["elsewhere"]),
    }


def queue_url(stack: dict, kind: str, **args) -> str:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"{stack['gateway']}/cases/queues/{kind}" + (f"?{query}" if query else "")


def test_a_village_centre_accepts_its_own_villages_reported_cases(
    page, ui_stack, village_cases, places
):
    sign_in(page, ui_stack, "village-centre")
    page.goto(f"{ui_stack['gateway']}/cases")
    assert page.url.endswith("/cases/queues/to-accept")
    assert page.inner_text("h1") == "待受理"
    shown = page.locator("tr[data-case]").evaluate_all("rows => rows.map(r => r.dataset.case)")
    assert {case["id"] for case in village_cases["ours"]} <= set(shown)
    assert village_cases["other"]["id"] not in shown
    grids = page.locator("tr[data-case] td:nth-child(6)").all_inner_texts()
    assert grids and all(grid.startswith(places["village"]) for grid in grids)
    assert set(page.locator("tr[data-case]").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )) <= {"green", "amber", "red"}  # fmt: skip
    badge = page.locator(f"tr[data-case='{village_cases['ours'][0]['id']}'] .deadline")
    assert re.search(r"剩余|超时", badge.inner_text())
    link = page.locator(f"tr[data-case='{village_cases['ours'][0]['id']}'] a").first
    assert link.get_attribute("href") == f"/cases/{village_cases['ours'][0]['id']}"
    assert "待受理" in page.locator("nav.queue-tabs").inner_text()
    assert_accessible(page)
    screenshot(page, "queue-to-accept")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_bulk_accept_shows_each_cases_result_and_moves_them_on(page, ui_stack, api):
    fresh = [api.report(description=f"批量受理 {n}") for n in range(3)]
    sign_in(page, ui_stack, "village-centre")
    page.goto(queue_url(ui_stack, "to-accept", category=CATEGORY, size=100))
    # One of them is accepted by someone else after the page was shown.
    api.act("village-centre", fresh[2], "accept")
    for case in fresh:
        page.check(f"tr[data-case='{case['id']}'] input.select-case")
    page.click("#bulk-submit")
    page.wait_for_load_state("networkidle")

    outcome = {
        case["id"]: page.locator(f"tr[data-result='{case['id']}']").inner_text() for case in fresh
    }
    for case in fresh[:2]:
        assert "完成" in outcome[case["id"]] and "已受理" in outcome[case["id"]]
    assert "未执行" in outcome[fresh[2]["id"]]
    assert "不再允许" in outcome[fresh[2]["id"]] or "已变化" in outcome[fresh[2]["id"]]
    assert not {case["id"] for case in fresh} & set(
        page.locator("tr[data-case]").evaluate_all("rows => rows.map(r => r.dataset.case)")
    )
    assert_accessible(page)
    screenshot(page, "queue-bulk-results")

    page.goto(queue_url(ui_stack, "to-register", category=CATEGORY, size=100))
    assert page.inner_text("h1") == "待立案"
    listed = page.locator("tr[data-case]").evaluate_all("rows => rows.map(r => r.dataset.case)")
    assert {case["id"] for case in fresh} <= set(listed)


@pytest.mark.parametrize("viewport", ["desktop"])
def test_bulk_dispatch_to_a_department_fills_its_to_sign_queue(page, ui_stack, api, places):
    registered = []
    for n in range(2):
        case = api.act("village-centre", api.report(description=f"批量派遣 {n}"), "accept")
        registered.append(api.act("village-centre", case, "register"))
    committee = ui_stack["users"]["village-committee"][2]
    sign_in(page, ui_stack, "village-centre")
    page.goto(queue_url(ui_stack, "to-dispatch", category=CATEGORY, size=100))
    assert page.inner_text("h1") == "待派遣"
    page.select_option("#bulk-department", committee)
    for case in registered:
        page.check(f"tr[data-case='{case['id']}'] input.select-case")
    page.click("#bulk-submit")
    page.wait_for_load_state("networkidle")
    for case in registered:
        assert "已派遣" in page.locator(f"tr[data-result='{case['id']}']").inner_text()
    assert_accessible(page)

    handler = form_session(ui_stack, "village-committee")
    inbox = handler.get(queue_url(ui_stack, "to-sign"), timeout=30)
    assert inbox.status_code == 200
    assert {case["id"] for case in registered} <= {row[0] for row in ROW.findall(inbox.text)}
    assert "批量签收" in inbox.text  # departments sign several at once
    # A department has no centre's queues.
    assert handler.get(queue_url(ui_stack, "to-accept"), timeout=30).status_code == 403


def exported_ids(browser: requests.Session, stack: dict, **filters) -> list[list[str]]:
    export = browser.get(
        f"{stack['gateway']}/cases/queues/to-accept/export.csv", params=filters, timeout=30
    )
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("text/csv")
    assert export.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["案件", "类别", "紧急程度"]
    return rows[1:]


def test_the_csv_export_is_exactly_the_filtered_set_on_every_page(ui_stack, api, places):
    for n in range(28):  # 22 normal ones: more than the page of 20 shows
        api.report(description=f"导出 {n}", urgency="urgent" if n % 5 == 0 else "normal")
    browser = form_session(ui_stack, "village-centre")
    filters = {"category": CATEGORY, "territory": places["grid"]}
    screen = browser.get(queue_url(ui_stack, "to-accept", size=20, **filters), timeout=30)
    assert screen.status_code == 200
    assert len(ROW.findall(screen.text)) == 20  # one page of the set

    rows = exported_ids(browser, ui_stack, **filters)
    expected = api.search("village-centre", state="reported", **filters)
    assert len(expected) > 20
    assert sorted(row[0] for row in rows) == sorted(case["id"] for case in expected)
    assert all(row[1].startswith(CATEGORY) and row[4] == places["grid"] for row in rows)

    # A filter the API has no parameter for (urgency): the API's list, filtered the same.
    normal = exported_ids(browser, ui_stack, urgency="normal", **filters)
    assert sorted(row[0] for row in normal) == sorted(
        case["id"] for case in expected if case["urgency"] == "normal"
    )
    assert len(normal) > 20 and all(row[2] == "一般" for row in normal)


def test_a_queue_sorts_by_deadline_both_ways(ui_stack, village_cases):
    browser = form_session(ui_stack, "village-centre")

    def dues(sort: str) -> list[datetime]:
        screen = browser.get(queue_url(ui_stack, "to-accept", sort=sort, size=100), timeout=30)
        assert screen.status_code == 200
        return [datetime.fromisoformat(due) for _, due, _ in ROW.findall(screen.text) if due]

    soonest = dues("deadline")
    assert len(soonest) >= 2
    assert soonest == sorted(soonest)
    latest = dues("-deadline")
    assert latest == sorted(latest, reverse=True)
    assert set(latest) == set(soonest)


def test_each_row_shows_its_deadline_status_in_colour_and_words(ui_stack, api):
    on_time, due_soon, late = (api.report(description=f"时限 {n}") for n in range(3))
    # Test setup: pretend time passed (the events database, as tests/integration/events
    # does): past the stage's 80 % warning for one case, past its deadline for another.
    now = ui_stack["clock"]()
    settings = ui_stack["settings"]
    client = new_client(settings, app_name="gridwork-tests")
    try:
        incidents = client[settings.database_name("events")]["incidents"]
        incidents.update_one(
            {"_id": due_soon["id"]},
            {
                "$set": {
                    "stage_warn_at": now - timedelta(hours=1),
                    "stage_due": now + timedelta(days=3),
                }
            },
        )
        # A minute late: far short of the automatic escalation (8 working hours overdue),
        # which would move the case up to the township centre.
        incidents.update_one(
            {"_id": late["id"]},
            {
                "$set": {
                    "stage_warn_at": now - timedelta(hours=2),
                    "stage_due": now - timedelta(minutes=1),
                }
            },
        )
    finally:
        client.close()

    browser = form_session(ui_stack, "village-centre")
    screen = browser.get(queue_url(ui_stack, "to-accept", size=100), timeout=30)
    status = {case_id: colour for case_id, _, colour in ROW.findall(screen.text)}
    assert status[on_time["id"]] == "green"
    assert status[due_soon["id"]] == "amber"
    assert status[late["id"]] == "red"

    def badge(case: dict) -> str:
        row = screen.text.split(f'data-case="{case["id"]}"', 1)[1].split("</tr>", 1)[0]
        return re.search(r'<span class="deadline deadline-\w+">([^<]*)</span>', row).group(1)

    assert badge(on_time).startswith("正常 · 剩余")
    assert badge(due_soon).startswith("临期 · 剩余")
    assert badge(late).startswith("已超期 · 超时")


def test_a_bulk_post_without_the_csrf_token_is_refused(ui_stack, api):
    case = api.report(description="无令牌")
    browser = form_session(ui_stack, "village-centre")
    refused = browser.post(
        f"{ui_stack['gateway']}/cases/queues/to-accept/bulk",
        data={
            "case": case["id"],
            f"version-{case['id']}": case["version"],
            f"key-{case['id']}": "k",
        },
        allow_redirects=False,
        timeout=20,
    )
    assert refused.status_code == 403
    listed = api.search("village-centre", state="reported", category=CATEGORY)
    assert case["id"] in {item["id"] for item in listed}  # still waiting to be accepted
