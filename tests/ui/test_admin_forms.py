"""Administration forms in a real browser: a webhook delivery that died (its receiver
failed) sent again from the dead-letter page reaches the receiver once it is back, and
the deadline policy form saves what the API then reads, naming a bad or erased field.

The ui stack lets webhooks target 127.0.0.1 and gives a delivery one try
(tests/ui/conftest.py), so a dead letter is one failed request away."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devstack.processes import wait_until
from tests.ui.conftest import assert_accessible, screenshot, sign_in
from tests.ui.test_case_page import api_login, grid_centre, report

pytestmark = [pytest.mark.ui, pytest.mark.parametrize("viewport", ["desktop"])]

WAIT_S = 30
POLICY = ("auto_escalate_after_hours", "duplicate_radius_m", "duplicate_window_hours")


class Receiver:
    """A department's webhook endpoint on 127.0.0.1: answers `status` and keeps the ids
    of the events it accepted."""

    def __init__(self) -> None:
        self.status = 500
        self.received: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.status
                if status == 200:
                    receiver.received.append(json.loads(body)["id"])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def api(stack: dict, method: str, path: str, username: str = "admin", **kwargs):
    headers = {**api_login(stack, username), "Idempotency-Key": uuid.uuid4().hex}
    return requests.request(
        method, f"{stack['gateway']}/api/v1{path}", headers=headers, timeout=20, **kwargs
    )


def test_a_dead_letter_is_sent_again_from_its_page(page, ui_stack, receiver, console):
    grid = ui_stack["users"]["grid-worker"][1]
    subscribed = api(
        ui_stack,
        "POST",
        "/subscriptions",
        json={"url": receiver.url, "event_types": ["incident.reported"], "territory": grid},
    )
    assert subscribed.status_code == 201, subscribed.text
    subscription = subscribed.json()["id"]
    dead_letters = f"/subscriptions/{subscription}/dead-letters"
    try:
        where = grid_centre(ui_stack, grid)
        report(ui_stack, "grid-worker", "网络钩子：井盖松动", location=where)  # its event dies

        def died() -> list[dict]:
            return api(ui_stack, "GET", dead_letters).json()["items"]

        wait_until(died, WAIT_S, "the failed delivery to become a dead letter", interval_s=0.5)
        (dead,) = died()
        assert dead["last_error"] == "HTTP 500" and not receiver.received

        sign_in(page, ui_stack, "admin")
        page.goto(f"{ui_stack['gateway']}/admin/webhooks")
        with page.expect_navigation():
            page.click(f"#subscriptions tr:has-text('{receiver.url}') a")
        row = page.locator("#dead-letters tbody tr", has_text=dead["event_id"])
        assert "incident.reported" in row.inner_text() and "HTTP 500" in row.inner_text()
        assert_accessible(page)
        screenshot(page, "admin-dead-letters")

        stale = page.context.new_page()  # a second tab on the same list, left open
        stale.goto(page.url)

        receiver.status = 200  # the department's server is back
        with page.expect_navigation():
            row.locator("button[type=submit]").click()
        assert page.inner_text("[role=status]") == "该投递将重新发送。"
        wait_until(lambda: receiver.received, WAIT_S, "the delivery sent again to arrive")
        assert receiver.received == [dead["event_id"]]
        assert not died()
        page.reload()
        assert page.locator("#no-dead-letters").is_visible()

        # The stale tab sends it again too: told it went already, not a 404, not twice.
        with stale.expect_navigation():
            stale.locator("#dead-letters button[type=submit]").click()
        assert dead["id"] in stale.inner_text("#not-dead")
        assert stale.locator("#no-dead-letters").is_visible()
        assert receiver.received == [dead["event_id"]]
    finally:
        api(ui_stack, "DELETE", f"/subscriptions/{subscription}")


def test_the_deadline_policy_form_saves_and_names_a_bad_value(page, ui_stack, console):
    before = api(ui_stack, "GET", "/deadline-policy").json()
    console.allow(r"status of 422")
    sign_in(page, ui_stack, "admin")
    page.goto(f"{ui_stack['gateway']}/admin/setup")
    try:
        shown = float(page.input_value("#duplicate_radius_m"))
        assert shown == before["duplicate_radius_m"]
        page.fill("#auto_escalate_after_hours", "36")
        page.fill("#duplicate_radius_m", "-5")
        page.click("form[action$='/deadline-policy'] button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#duplicate_radius_m-error") == "请填写大于 0 的数字。"
        assert page.get_attribute("#duplicate_radius_m", "aria-invalid") == "true"
        assert page.locator("#auto_escalate_after_hours-error").count() == 0
        assert page.input_value("#duplicate_radius_m") == "-5"  # kept to correct
        assert api(ui_stack, "GET", "/deadline-policy").json() == before  # nothing saved
        assert_accessible(page)

        page.fill("#duplicate_radius_m", "150")
        page.fill("#duplicate_window_hours", "")  # erased: named, not silently kept
        page.click("form[action$='/deadline-policy'] button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#duplicate_window_hours-error") == "必填。"
        assert page.get_attribute("#duplicate_window_hours", "aria-invalid") == "true"
        assert api(ui_stack, "GET", "/deadline-policy").json() == before

        page.fill("#duplicate_window_hours", str(before["duplicate_window_hours"]))
        with page.expect_navigation():
            page.click("form[action$='/deadline-policy'] button[type=submit]")
        assert page.inner_text("#saved") == "时限策略已保存。"
        saved = api(ui_stack, "GET", "/deadline-policy").json()
        assert saved["auto_escalate_after_hours"] == 36 and saved["duplicate_radius_m"] == 150
        assert saved["duplicate_window_hours"] == before["duplicate_window_hours"]
        assert float(page.input_value("#auto_escalate_after_hours")) == 36
        screenshot(page, "admin-policy")
    finally:  # the policy is the whole stack's: other tests find duplicates by it
        restored = api(
            ui_stack,
            "POST",
            "/deadline-policy",
            json={name: before[name] for name in POLICY},
        )
        assert restored.status_code == 200, restored.text
