"""The case page's other forms in a real browser, each as the role that takes the step:
a department returns a case with its reason, asks for an extension that the centre
decides, a leader supervises with a new deadline, the centre suspends and resumes a case
and records the reporter's evaluation of a closed one. Each form sent with a required
field left empty comes back naming that field; sent complete, the step is in the case
(through the API) and on the page's timeline.

The steps before the one under test go through the API: the journey test
(test_case_page.py) drives those forms already."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
import requests

from gridwork_common.clock import CHINA_TIME
from tests.ui.conftest import assert_accessible, screenshot, sign_in
from tests.ui.test_case_page import (
    act,
    api_case,
    api_login,
    case_url,
    grid_centre,
    report,
    timeline_steps,
    village_of,
)

pytestmark = [pytest.mark.ui, pytest.mark.parametrize("viewport", ["desktop"])]

REQUIRED = "此项为必填项。"


def api_step(stack: dict, username: str, case_id: str, path: str, **body) -> dict:
    """One step of the loop through the API, at the case's current version."""
    version = api_case(stack, case_id)["version"]
    answer = requests.post(
        f"{stack['gateway']}/api/v1/incidents/{case_id}/{path}",
        json={"expected_version": version, **body},
        headers={**api_login(stack, username), "Idempotency-Key": uuid.uuid4().hex},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def reported_case(stack: dict, what: str) -> dict:
    grid = stack["users"]["grid-worker"][1]
    return report(stack, "grid-worker", what, location=grid_centre(stack, grid))


def accepted_case(stack: dict, what: str) -> dict:
    case = reported_case(stack, what)
    api_step(stack, "village-centre", case["id"], "accept")
    return case


def handled_case(stack: dict, what: str) -> dict:
    """A case the village committee has signed for (being handled)."""
    case = accepted_case(stack, what)
    api_step(stack, "village-centre", case["id"], "register")
    committee = f"{village_of(stack)}-committee"
    api_step(stack, "village-centre", case["id"], "dispatch", department_code=committee)
    api_step(stack, "village-committee", case["id"], "sign")
    return case


def closed_case(stack: dict, what: str) -> dict:
    case = handled_case(stack, what)
    api_step(stack, "village-committee", case["id"], "feedback", result="已处理")
    api_step(stack, "grid-worker", case["id"], "verify", passed=True)
    api_step(stack, "village-centre", case["id"], "close")
    return case


def left_empty(page, action: str, field: str, *, keep_browser_checks: bool = True) -> None:
    """Send an action's form with a required field left empty (blank text, or a choice
    not made with the browser's own check turned off: the server must still name it);
    the page comes back with the field's error tied to it and nothing done."""
    form = page.locator(f"#action-{action}")
    if not keep_browser_checks:
        form.evaluate("form => { form.noValidate = true; }")
    answer = act(page, action)
    assert answer.status == 422
    error = page.locator(f"#{action}-{field}-error")
    assert error.inner_text() == REQUIRED
    described = page.locator(f'#action-{action} [aria-describedby="{action}-{field}-error"]')
    assert described.count() == 1, "the error is not tied to its field"
    assert "未完成" in page.inner_text("#case-alert")


def last_step(page):
    return page.locator("#timeline li").last


# ----------------------------------------------------------------------------- tests


def test_a_department_returns_a_case_with_its_reason(page, ui_stack, console):
    case = handled_case(ui_stack, "退回：小区内违章搭建")
    console.allow(r"status of 422")
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, ui_stack, "village-committee")
    page.goto(case_url(ui_stack, case["id"]))
    assert page.inner_text("#case-state") == "处置中"

    page.fill("#return-reason", "   ")  # blank: passes the browser's check, not the server's
    left_empty(page, "return", "reason")
    assert api_case(ui_stack, case["id"])["state"] == "handling"
    assert_accessible(page)

    act(page, "return", lambda form: form.locator("#return-reason").fill("属住建部门职责"))
    assert page.inner_text("#case-state") == "已退回"
    returned = api_case(ui_stack, case["id"])
    assert returned["state"] == "returned" and returned["department"] is None
    assert timeline_steps(page)[-1] == "退回"
    assert "原因：属住建部门职责" in last_step(page).inner_text()
    assert page.locator("#action-return").count() == 0  # no longer the department's


def test_an_extension_is_asked_for_by_the_department_and_decided_by_the_centre(
    page, ui_stack, console
):
    case = handled_case(ui_stack, "延期：排水管道破裂")
    due_before = datetime.fromisoformat(api_case(ui_stack, case["id"])["stage_due"])
    console.allow(r"status of 422")
    sign_in(page, ui_stack, "village-committee")
    page.goto(case_url(ui_stack, case["id"]))
    page.fill("#request_extension-hours", "8")
    page.fill("#request_extension-reason", " ")
    left_empty(page, "request_extension", "reason")
    assert page.input_value("#request_extension-hours") == "8"  # kept to correct

    act(
        page,
        "request_extension",
        lambda form: form.locator("#request_extension-reason").fill("需采购管材"),
    )
    assert "8" in page.inner_text("#case-facts") and "需采购管材" in page.inner_text("#case-facts")
    assert api_case(ui_stack, case["id"])["pending_extension"]["hours"] == 8
    assert page.locator("#action-request_extension").count() == 0  # one request at a time
    assert page.locator("#action-decide_extension").count() == 0  # the centre's to decide

    page.context.clear_cookies()
    sign_in(page, ui_stack, "village-centre")
    page.goto(case_url(ui_stack, case["id"]))
    left_empty(page, "decide_extension", "approve", keep_browser_checks=False)
    assert api_case(ui_stack, case["id"])["pending_extension"] is not None
    assert_accessible(page)

    act(page, "decide_extension", lambda form: form.locator("input[value=yes]").check())
    decided = api_case(ui_stack, case["id"])
    assert decided["pending_extension"] is None and decided["approved_extensions"] == 1
    assert datetime.fromisoformat(decided["stage_due"]) > due_before
    assert timeline_steps(page)[-2:] == ["申请延期", "审批延期"]
    asked, approved = page.locator("#timeline li").all()[-2:]
    assert "原因：需采购管材" in asked.inner_text()
    assert "申请延期 8 个工作小时" in asked.inner_text()
    assert "同意延期：8 个工作小时" in approved.inner_text()
    screenshot(page, "case-extension")


def test_a_leader_supervises_a_case_with_a_new_deadline(page, ui_stack, console):
    case = reported_case(ui_stack, "督办：道路积水")
    due = datetime.fromisoformat(api_case(ui_stack, case["id"])["stage_due"])
    new_due = (due.astimezone(CHINA_TIME) + timedelta(days=1)).replace(second=0, microsecond=0)
    console.allow(r"status of 422")
    sign_in(page, ui_stack, "leader")
    page.goto(case_url(ui_stack, case["id"]))
    page.fill("#supervise-new_due", new_due.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#supervise-note", "  ")
    left_empty(page, "supervise", "note")
    assert api_case(ui_stack, case["id"])["supervision_count"] == 0
    assert_accessible(page)

    act(page, "supervise", lambda form: form.locator("#supervise-note").fill("请尽快处理"))
    supervised = api_case(ui_stack, case["id"])
    assert supervised["supervised"] and supervised["supervision_count"] == 1
    # The deadline typed in China time, stored as that very instant.
    assert datetime.fromisoformat(supervised["stage_due"]) == new_due
    assert page.inner_text("#case-state") == "已上报"  # supervision does not move the case
    assert timeline_steps(page)[-1] == "督办"
    entry = last_step(page).inner_text()
    assert "请尽快处理" in entry and new_due.strftime("%Y-%m-%d %H:%M") in entry
    assert "1 次" in page.inner_text("#case-facts")


def test_the_centre_suspends_and_resumes_a_case(page, ui_stack, console):
    case = accepted_case(ui_stack, "挂起：待上级答复的占道问题")
    console.allow(r"status of 422")
    sign_in(page, ui_stack, "village-centre")
    page.goto(case_url(ui_stack, case["id"]))
    page.fill("#suspend-reason", "\n")
    left_empty(page, "suspend", "reason")
    assert api_case(ui_stack, case["id"])["state"] == "accepted"

    act(page, "suspend", lambda form: form.locator("#suspend-reason").fill("等待上级答复"))
    assert page.inner_text("#case-state") == "已挂起"
    assert api_case(ui_stack, case["id"])["state"] == "suspended"
    assert "原因：等待上级答复" in last_step(page).inner_text()
    assert page.locator("#action-register").count() == 0  # its clock and its steps stopped
    assert_accessible(page)

    act(page, "resume", lambda form: form.locator("textarea").fill("已答复"))
    assert page.inner_text("#case-state") == "已受理"
    assert api_case(ui_stack, case["id"])["state"] == "accepted"
    assert timeline_steps(page)[-2:] == ["挂起", "恢复"]
    assert page.locator("#action-register").count() == 1


def test_the_centre_records_the_evaluation_of_a_closed_case(page, ui_stack, console):
    case = closed_case(ui_stack, "评价：路灯不亮")
    console.allow(r"status of 422")
    sign_in(page, ui_stack, "village-centre")
    page.goto(case_url(ui_stack, case["id"]))
    assert page.inner_text("#case-state") == "已结案"
    left_empty(page, "evaluate", "satisfaction", keep_browser_checks=False)
    assert api_case(ui_stack, case["id"])["state"] == "closed"
    assert_accessible(page)

    act(
        page,
        "evaluate",
        lambda form: (
            form.locator("input[name=satisfaction][value='4']").check(),
            form.locator("textarea").fill("群众电话评价：满意"),
        ),
    )
    evaluated = api_case(ui_stack, case["id"])
    assert evaluated["state"] == "evaluated" and evaluated["satisfaction"] == 4
    assert page.inner_text("#case-state") == "已评价"
    assert "4 / 5" in page.inner_text("#case-facts")
    assert timeline_steps(page)[-1] == "评价"
    assert "群众电话评价：满意" in last_step(page).inner_text()
    assert page.locator("#no-actions").count() == 1  # nothing left to do
