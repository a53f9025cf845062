"""Publishing a catalogue version from the administration page: an item added through
the form (invalid fields named next to them, by the API's model and by the events
service), the new version in the list and in force, a form opened on an older version
refused rather than published over it, and no post without the CSRF token."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.ui.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.ui

HOURS = {"accept": 2, "register": 2, "dispatch": 4, "sign": 4, "handle": 35, "verify": 7}
HOURS["close"] = 2


def api_admin(stack: dict) -> dict:
    answer = requests.post(
        f"{stack['gateway']}/api/v1/auth/token",
        json={"grant_type": "password", "username": "admin", "password": stack["password"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def current_catalogue(stack: dict) -> dict:
    answer = requests.get(
        f"{stack['gateway']}/api/v1/catalogue", headers=api_admin(stack), timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def version_rows(page) -> list[str]:
    return page.locator("#catalogue-versions tbody tr").all_inner_texts()


def fill_item(page, code: str, name: str) -> None:
    page.fill("#code", code)
    page.fill("#name", name)
    page.select_option("#owner_township", "sanitation")
    page.select_option("#owner_county", "urban-management")
    for stage, hours in HOURS.items():
        page.fill(f"#normal_{stage}", str(hours))
        page.fill(f"#urgent_{stage}", str(max(1, hours // 4)))


@pytest.mark.parametrize("viewport", ["desktop"])
def test_an_administrator_publishes_a_new_catalogue_version(page, ui_stack, console):
    console.allow(r"status of 422")  # the invalid forms, on purpose
    before = current_catalogue(ui_stack)
    known = {entry["code"] for entry in before["entries"]}
    code = next(f"04.{n}" for n in range(90, 100) if f"04.{n}" not in known)
    sign_in(page, ui_stack, "admin")
    page.goto(f"{ui_stack['gateway']}/admin/setup")
    assert f"{before['version']} (当前)" in version_rows(page)[0]
    with page.expect_navigation():
        page.click("#add-item")
    assert "新增事项" in page.inner_text("h1")

    # A stage without hours: the API's model names it, nothing is published.
    fill_item(page, code, "占道晾晒")
    page.fill("#normal_handle", "")
    with page.expect_navigation():
        page.click("form.catalogue-form button[type=submit]")
    assert page.inner_text("#normal_handle-error") == "请填写大于 0 的数字。"
    assert page.get_attribute("#normal_handle", "aria-invalid") == "true"
    assert page.input_value("#name") == "占道晾晒"  # the rest of the form is kept
    assert_accessible(page)

    # Urgent longer than normal: the events service refuses it, on that field.
    page.fill("#normal_handle", "35")
    page.fill("#urgent_accept", "5")
    with page.expect_navigation():
        page.click("form.catalogue-form button[type=submit]")
    assert page.inner_text("#urgent_accept-error") == "不得长于一般案件的时限。"
    assert current_catalogue(ui_stack)["version"] == before["version"]
    screenshot(page, "admin-catalogue-item")

    page.fill("#urgent_accept", "1")
    with page.expect_navigation():
        page.click("form.catalogue-form button[type=submit]")
    published = before["version"] + 1
    assert page.url.endswith(f"/admin/setup?published={published}")
    assert f"第 {published} 版已发布" in page.inner_text("#published")
    rows = version_rows(page)
    assert rows[0].startswith(f"{published} (当前)") and "admin" in rows[0]
    assert str(len(before["entries"]) + 1) in rows[0]
    assert rows[1].startswith(str(before["version"]))
    assert f"{code}\t占道晾晒" in page.inner_text("#catalogue")
    after = current_catalogue(ui_stack)
    (entry,) = [e for e in after["entries"] if e["code"] == code]
    assert after["version"] == published
    assert entry["owners"] == {"township": "sanitation", "county": "urban-management"}
    assert entry["time_limits"]["normal"] == {stage: float(h) for stage, h in HOURS.items()}
    assert after["categories"]["04"] == before["categories"]["04"]  # kept its name
    assert_accessible(page)
    screenshot(page, "admin-catalogue-published")

    # Changing it on a form opened before another version was published: refused.
    page.goto(f"{ui_stack['gateway']}/admin/catalogue/item?code={code}")
    assert "修改事项" in page.inner_text("h1")
    assert page.input_value("#normal_handle") == "35"
    page.fill("#name", "占道晾晒物品")
    meanwhile = requests.post(
        f"{ui_stack['gateway']}/api/v1/catalogue",
        json={"categories": after["categories"], "entries": after["entries"]},
        headers={**api_admin(ui_stack), "Idempotency-Key": uuid.uuid4().hex},
        timeout=10,
    )
    assert meanwhile.status_code == 201, meanwhile.text
    console.allow(r"status of 409")
    with page.expect_navigation():
        page.click("form.catalogue-form button[type=submit]")
    assert f"已有第 {published + 1} 版发布" in page.inner_text("#stale")
    assert current_catalogue(ui_stack)["version"] == published + 1
    with page.expect_navigation():  # sent again, now on the version it has seen
        page.click("form.catalogue-form button[type=submit]")
    assert page.url.endswith(f"/admin/setup?published={published + 2}")
    assert f"{code}\t占道晾晒物品" in page.inner_text("#catalogue")

    console.allow(r"status of 403")
    refused = page.request.post(
        f"{ui_stack['gateway']}/admin/catalogue/item",
        form={"code": code, "name": "无令牌", "based_on": str(published + 2)},
    )
    assert refused.status == 403
    assert current_catalogue(ui_stack)["version"] == published + 2
