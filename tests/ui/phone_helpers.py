"""Helpers of the phone app's browser tests: a phone-sized Chromium context with touch and a
fake GPS position, and the API calls that set up and check what the phone sent."""

from __future__ import annotations

import io
import uuid
from contextlib import contextmanager

import requests
from PIL import Image

from tests.ui.conftest import CSP_LISTENER, VIEWPORTS, Console, pinned_context

PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 30_000


@contextmanager
def phone_page(browser, console: Console, stack: dict, position: list[float]):
    """A fresh phone (390 by 844 px, touch, mobile) on the stack's clock that may use its
    GPS, at `position` ([lon, lat]); console errors and CSP violations are collected in
    `console`."""
    context = pinned_context(
        browser,
        stack,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        geolocation={"longitude": position[0], "latitude": position[1], "accuracy": 5},
        permissions=["geolocation"],
    )
    with watched_page(context, console) as page:
        yield page


@contextmanager
def desktop_page(browser, console: Console, stack: dict):
    """A fresh desktop browser (the command centre's screen) on the stack's clock, watched
    like the phone."""
    width, height = VIEWPORTS["desktop"]
    context = pinned_context(
        browser,
        stack,
        viewport={"width": width, "height": height},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    with watched_page(context, console) as page:
        yield page


@contextmanager
def watched_page(context, console: Console):
    """The context's page, its console errors and CSP violations collected in `console`;
    the context closed afterwards."""
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on(
        "console",
        lambda message: console.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    try:
        yield page
    finally:
        context.close()


def move_to(page, position: list[float]) -> None:
    page.context.set_geolocation({"longitude": position[0], "latitude": position[1], "accuracy": 5})


def open_app(page, stack: dict) -> None:
    """The app, signed in, with its service worker in control (so it works offline)."""
    page.goto(f"{stack['gateway']}/app/")
    page.wait_for_selector("body[data-ready]")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def go(page, screen: str) -> None:
    page.evaluate("screen => { location.hash = screen; }", f"#{screen}")
    page.wait_for_selector(f'body[data-ready="{screen.split("/")[0]}"]')


def jpeg(colour: tuple[int, int, int]) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG")
    return {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def waiting_banner(page) -> str:
    # A screen may be ready before the app has first read its outbox (body[data-waiting]
    # is set by that read): a banner looked at earlier is hidden whatever is waiting.
    page.wait_for_selector("body[data-waiting]", state="attached")
    banner = page.locator("#outbox-banner")
    return "" if banner.is_hidden() else page.inner_text("#outbox-count")


def wait_until_sent(page) -> None:
    """Nothing left on the phone to send (call once the item is made: the form's
    screen has handed over to Today)."""
    page.wait_for_selector('body[data-waiting="0"]:not([data-syncing])', timeout=60_000)


# ----------------------------------------------------------------------------- API


def token(stack: dict, username: str) -> dict:
    answer = requests.post(
        f"{stack['gateway']}/api/v1/auth/token",
        json={"grant_type": "password", "username": username, "password": stack["password"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def api(stack: dict, username: str, method: str, path: str, **kwargs):
    headers = {**token(stack, username), **kwargs.pop("headers", {})}
    if method == "POST":
        headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
    answer = requests.request(
        method, f"{stack['gateway']}/api/v1{path}", headers=headers, timeout=20, **kwargs
    )
    assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
    return answer.json()


def grid_centre(stack: dict, grid_code: str) -> list[float]:
    (feature,) = [f for f in stack["territory"]["features"] if f["properties"]["code"] == grid_code]
    ring = feature["geometry"]["coordinates"][0][:-1]
    return [sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)]


def member_to_visit(stack: dict, worker: str) -> dict:
    """A resident of the worker's grid flagged into a group with the worker responsible,
    so the worker's visit worklist has them this month."""
    grid = stack["users"][worker][1]
    residents = api(stack, "admin", "GET", "/residents", params={"code": grid, "limit": 50})
    visited = {m["resident_id"] for m in worklist(stack, worker)["due"]}
    resident = next(r for r in residents["items"] if r["id"] not in visited)
    return api(
        stack,
        "admin",
        "POST",
        "/groups",
        json={
            "resident_id": resident["id"],
            "group": "elderly_alone",
            "risk_level": "high",
            "responsible_worker_id": worker,
        },
    )


def worklist(stack: dict, worker: str) -> dict:
    return api(stack, worker, "GET", "/visits/worklist")


def incidents_described(stack: dict, worker: str, description: str) -> list[dict]:
    page = api(stack, worker, "GET", "/incidents", params={"limit": 200})
    return [case for case in page["items"] if case["description"] == description]


def upload(stack: dict, username: str, case_id: str, purpose: str, colour) -> str:
    photo = jpeg(colour)
    stored = api(
        stack,
        username,
        "POST",
        "/media",
        data={
            "content_type": "image/jpeg",
            "purpose": purpose,
            "owner_kind": "incident",
            "owner_id": case_id,
        },
        files={"file": ("photo.jpg", photo["buffer"], "image/jpeg")},
    )
    return stored["id"]


def act(stack: dict, username: str, case: dict, action: str, **body) -> dict:
    return api(
        stack,
        username,
        "POST",
        f"/incidents/{case['id']}/{action}",
        json={"expected_version": case["version"], **body},
    )


def handled_case(stack: dict, description: str) -> dict:
    """A case of the grid worker's grid run through the loop by the command centre and a
    department to "awaiting verification", with a before and an after photo."""
    grid = stack["users"]["grid-worker"][1]
    village = stack["users"]["village-centre"][1]
    where = grid_centre(stack, grid)
    body = {"category": "04.01", "description": description, "location": where}
    case = api(stack, "grid-worker", "POST", "/incidents", json=body)["incident"]
    upload(stack, "grid-worker", case["id"], "incident_report", (200, 40, 40))
    case = act(stack, "village-centre", case, "accept")
    case = act(stack, "village-centre", case, "register")
    case = act(stack, "village-centre", case, "dispatch", department_code=f"{village}-committee")
    return handle(stack, case)


def handle(stack: dict, case: dict) -> dict:
    if case["state"] != "handling":
        case = act(stack, "village-committee", case, "sign")
    after = upload(stack, "village-committee", case["id"], "feedback", (40, 160, 60))
    case = act(stack, "village-committee", case, "feedback", result="已清理", media_ids=[after])
    assert case["state"] == "awaiting_verification"
    return case
