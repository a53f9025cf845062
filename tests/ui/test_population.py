"""The population pages in a real browser: the territory tree limited to the caller's
subtree with its statistics, residents masked until a purpose is given (and the reveal in
the access audit), a bulk import with bad rows whose progress reaches 100 % and whose
error report names the bad fields, and special groups with this month's visit status."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
import requests

from tests.population_data import random_resident_ids, resident_id
from tests.ui.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.ui

MASK = "*"
IMPORT_TIMEOUT_MS = 60_000


class Api:
    """The JSON API as `username` (the same service calls the pages make)."""

    def __init__(self, stack: dict, username: str):
        self.base = f"{stack['gateway']}/api/v1"
        answer = requests.post(
            f"{self.base}/auth/token",
            json={"grant_type": "password", "username": username, "password": stack["password"]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def get(self, path: str, **params):
        answer = requests.get(f"{self.base}{path}", params=params, headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: dict):
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        answer = requests.post(f"{self.base}{path}", json=body, headers=headers, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()


def scope_of(stack: dict, username: str) -> str:
    return stack["users"][username][1]


def grids_under(stack: dict, code: str) -> list[str]:
    return sorted(
        feature["properties"]["code"]
        for feature in stack["territory"]["features"]
        if len(feature["properties"]["code"]) == 15
        and feature["properties"]["code"].startswith(code)
    )


def grid_point(stack: dict, grid: str) -> list[float]:
    (feature,) = [f for f in stack["territory"]["features"] if f["properties"]["code"] == grid]
    ring = feature["geometry"]["coordinates"][0][:-1]
    return [sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)]


def test_the_tree_shows_only_the_callers_subtree_with_statistics(page, ui_stack, console):
    village = scope_of(ui_stack, "village-centre")
    api = Api(ui_stack, "village-centre")
    expected = api.get(f"/territories/{village}/statistics")
    grid = grids_under(ui_stack, village)[0]
    expected_grid = api.get(f"/territories/{grid}/statistics")

    sign_in(page, ui_stack, "village-centre")
    page.goto(f"{ui_stack['gateway']}/population")
    assert page.url.endswith(f"/population/territory/{village}")
    assert village in page.inner_text("h1")
    assert page.inner_text("[data-stat=residents]") == str(expected["residents"])
    assert page.inner_text("[data-stat=households]") == str(expected["households"])
    assert page.inner_text("[data-stat=grids]") == str(expected["grids"])
    assert expected["residents"] > 0
    # The trail starts at the caller's own node: nothing above it is offered.
    assert page.locator("nav.trail a").count() == 0
    rows = page.locator("#children tbody tr")
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.code)")) == grids_under(
        ui_stack, village
    )
    grid_row = page.locator(f"#children tr[data-code='{grid}'] td")
    assert grid_row.nth(3).inner_text() == str(expected_grid["residents"])
    assert_accessible(page)
    screenshot(page, "population-territory")

    page.click(f"#children tr[data-code='{grid}'] a")
    assert page.url.endswith(f"/population/territory/{grid}")
    assert page.locator("nav.trail a").all_inner_texts()  # back up to the village

    # Above the caller's scope, or beside it, is "not found", as in the API.
    county = scope_of(ui_stack, "admin")
    console.allow(r"status of 404")
    answer = page.goto(f"{ui_stack['gateway']}/population/territory/{county}")
    assert answer.status == 404
    other_village = next(
        f["properties"]["code"]
        for f in ui_stack["territory"]["features"]
        if len(f["properties"]["code"]) == 12 and f["properties"]["code"] != village
    )
    assert page.goto(f"{ui_stack['gateway']}/population/territory/{other_village}").status == 404


def test_a_masked_id_is_revealed_only_with_a_purpose_and_is_audited(
    page, ui_stack, viewport, console
):
    grid = grids_under(ui_stack, scope_of(ui_stack, "village-centre"))[0]
    sign_in(page, ui_stack, "village-centre")
    page.goto(f"{ui_stack['gateway']}/population/residents?code={grid}")
    assert MASK in page.locator("#residents tbody tr td.masked").first.inner_text()
    assert_accessible(page)
    screenshot(page, "population-residents")

    page.locator("#residents tbody tr a").first.click()
    resident = page.url.rsplit("/", 1)[-1]
    assert MASK in page.inner_text("#id-number")
    # No purpose: refused (the form again, answered 422), still masked.
    console.allow(r"status of 422")
    page.click("#reveal-form button[type=submit]")
    assert page.inner_text("#purpose-error")
    assert MASK in page.inner_text("#id-number")
    assert_accessible(page)

    purpose = f"核实身份信息 {viewport}"
    page.fill("#purpose", purpose)
    page.click("#reveal-form button[type=submit]")
    number = page.inner_text("#id-number")
    assert MASK not in number and re.fullmatch(r"[0-9]{17}[0-9X]", number), number
    assert page.inner_text("#reveal-notice")
    screenshot(page, "population-resident-revealed")

    page.goto(f"{ui_stack['gateway']}/population/audit?resident_id={resident}")
    entries = page.locator(f"#audit tr[data-resident='{resident}']")
    assert purpose in entries.locator("td.purpose").all_inner_texts()
    assert "village-centre" in entries.first.inner_text()
    assert_accessible(page)
    screenshot(page, "population-audit")


def test_an_import_with_bad_rows_reaches_100_percent_and_offers_the_error_report(
    page, ui_stack, viewport
):
    grids = grids_under(ui_stack, scope_of(ui_stack, "village-centre"))
    good = random_resident_ids(4, seed=1212 if viewport == "desktop" else 3434)
    rows = [[number, f"导入测试{i}", grids[i % len(grids)], ""] for i, number in enumerate(good)]
    bad_check = resident_id()[:17] + ("0" if resident_id()[-1] != "0" else "1")
    rows += [
        [bad_check, "校验码错误", grids[0], ""],  # row 6: id_number
        [random_resident_ids(1, seed=99)[0], "", grids[0], ""],  # row 7: name
        [random_resident_ids(1, seed=98)[0], "网格错误", "530000000000000", ""],  # row 8
    ]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["id_number", "name", "grid_code", "phone"])
    writer.writerows(rows)

    sign_in(page, ui_stack, "village-centre")
    page.goto(f"{ui_stack['gateway']}/population/imports/")
    assert_accessible(page)
    screenshot(page, "population-import-form")
    page.select_option("#kind", "residents")
    page.set_input_files(
        "#file",
        files=[{"name": "居民.csv", "mimeType": "text/csv", "buffer": text.getvalue().encode()}],
    )
    page.click("#import-form button[type=submit]")
    page.wait_for_url(re.compile(r"/population/imports/[0-9a-f]+$"))
    # htmx polls the job until it is done; the bar reaches 100 %.
    page.wait_for_selector(
        "#import-progress-panel[data-status=finished]", timeout=IMPORT_TIMEOUT_MS
    )
    assert page.inner_text("#percent") == "100%"
    assert page.get_attribute("#import-progress", "value") == "100"
    assert "7 / 7 行" in page.inner_text("#progress-text")
    assert page.inner_text("[data-count=failed]") == "3"
    assert_accessible(page)
    screenshot(page, "population-import-finished")

    with page.expect_download() as download_info:
        page.click("#error-report")
    download = download_info.value
    report = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8-sig"))))
    fields = {int(row[0]): row[1] for row in report[1:]}
    assert fields == {6: "id_number", 7: "name", 8: "grid_code"}, report


def test_special_groups_show_this_months_visit_status(page, ui_stack):
    grid = scope_of(ui_stack, "grid-worker")
    api = Api(ui_stack, "grid-worker")
    residents = api.get("/residents", code=grid, limit=20)["items"]

    def member(resident: dict) -> dict:
        return api.post(
            "/groups",
            {
                "resident_id": resident["id"],
                "group": "elderly_alone",
                "risk_level": "low",  # one visit a month
                "responsible_worker_id": "grid-worker",
                "note": "界面测试",
            },
        )

    visited = residents[-1]
    visited_membership = member(visited)["id"]
    # Other tests of the same stack (the phone app's) visit members too: the one shown as
    # due is a resident nobody has visited.
    unvisited = next(
        resident
        for resident in reversed(residents[:-1])
        if not api.get(f"/groups/{member(resident)['id']}/visits")["items"]
    )
    if not api.get(f"/groups/{visited_membership}/visits")["items"]:  # once for both sizes
        point = grid_point(ui_stack, grid)
        api.post(
            "/visits",
            {
                "membership_id": visited_membership,
                "at": ui_stack["clock"]().isoformat(),
                "location": {"type": "Point", "coordinates": point},
                "notes": "界面测试走访",
            },
        )

    sign_in(page, ui_stack, "grid-worker")
    page.goto(f"{ui_stack['gateway']}/population/groups?group=elderly_alone")
    assert re.search(r"[0-9]{4}-[0-9]{2}", page.inner_text("#period"))
    done = page.locator(f"#members tr[data-resident='{visited['id']}'] .visit-status")
    due = page.locator(f"#members tr[data-resident='{unvisited['id']}'] .visit-status")
    assert done.get_attribute("data-status") == "done"
    assert "已完成" in done.inner_text()
    assert due.get_attribute("data-status") == "due"
    assert "待走访" in due.inner_text() and "0 / 1" in due.inner_text()
    assert unvisited["name"] in page.inner_text(f"#members tr[data-resident='{unvisited['id']}']")
    assert_accessible(page)
    screenshot(page, "population-groups")
