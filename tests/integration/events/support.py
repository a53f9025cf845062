"""Helpers for the incident-loop integration tests: more callers than conftest.py has,
points inside each grid, a desk that drives cases through the loop over RPC as different
users, and ways to move a case's deadlines into the past and run the service's timers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import entrypoint_hook
from pymongo.database import Database

from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import CloudEvent, parse_event
from gridwork_common.mongo import new_client
from tests.integration.events.conftest import (
    ADMIN,
    VILLAGE_A_CENTRE,
    VILLAGE_COMMITTEE_A,
    WORKER_A1,
)
from tests.population_data import (
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_B1,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A,
    VILLAGE_B,
)

# Points inside each grid of tests/population_data.py, and one far outside the county.
POINT_A1 = [102.505, 24.305]
POINT_A2 = [102.515, 24.305]
POINT_B1 = [102.605, 24.305]
POINT_BEIJING = [116.397, 39.909]

# Departments registered by the `county` fixture (ensure_default_departments).
COMMITTEE_A = f"{VILLAGE_A}-committee"
MEDIATION_A = f"{VILLAGE_A}-mediation"
POLICE_STATION_A_CODE = f"{TOWNSHIP_A}-police-station"
SANITATION_A = f"{TOWNSHIP_A}-sanitation"
COUNTY_POLICE = f"{COUNTY}-police"

WORKER_A2 = CallerContext(user_id="worker-a2", roles=("grid_worker",), scope=GRID_A2)
WORKER_B1 = CallerContext(user_id="worker-b1", roles=("grid_worker",), scope=GRID_B1)
VILLAGE_B_CENTRE = CallerContext(user_id="centre-vb", roles=("centre_operator",), scope=VILLAGE_B)
TOWNSHIP_B_CENTRE = CallerContext(user_id="centre-tb", roles=("centre_operator",), scope=TOWNSHIP_B)
MEDIATION_HANDLER_A = CallerContext(
    user_id="handler-med-a",
    roles=("department_handler",),
    scope=VILLAGE_A,
    department=MEDIATION_A,
)
SANITATION_HANDLER_A = CallerContext(
    user_id="handler-san-a",
    roles=("department_handler",),
    scope=TOWNSHIP_A,
    department=SANITATION_A,
)

INVALID = ("InvalidInput", "InvalidCommand")  # InvalidCommand is the domain's InvalidInput
EVENT_SOURCE = f"/counties/{COUNTY}/events"


def new_key() -> str:
    return uuid.uuid4().hex


def when(text: str | None) -> datetime | None:
    """A time the service rendered (ISO 8601 with an offset), as an aware datetime."""
    return None if text is None else datetime.fromisoformat(text)


def refused(call, *args, **kwargs) -> RemoteError:
    """The error a remote call is refused with (fails the test if it succeeds)."""
    with pytest.raises(RemoteError) as info:
        call(*args, **kwargs)
    return info.value


def assert_names_field(error: RemoteError, field: str, exc_types=INVALID) -> None:
    assert error.exc_type in exc_types, error
    assert error.value.startswith(f"{field}:"), error.value


def ids(page_or_items) -> set[str]:
    items = page_or_items["items"] if isinstance(page_or_items, dict) else page_or_items
    return {item["id"] for item in items}


class Desk:
    """Drives cases over RPC as different callers (one proxy per caller)."""

    def __init__(self, as_user):
        self._as_user = as_user
        self._proxies: dict[CallerContext, object] = {}

    def events(self, caller: CallerContext):
        if caller not in self._proxies:
            self._proxies[caller] = self._as_user(caller).events
        return self._proxies[caller]

    def report_result(
        self,
        caller: CallerContext = WORKER_A1,
        *,
        category: str = "04.01",
        point: list | None = POINT_A1,
        key: str | None = None,
        description: str = "楼道口垃圾堆积",
        **extra,
    ) -> dict:
        report = {"category": category, "description": description, **extra}
        if point is not None:
            report["location"] = point
        return self.events(caller).report_incident(report, key or new_key())

    def report(self, caller: CallerContext = WORKER_A1, **kwargs) -> dict:
        return self.report_result(caller, **kwargs)["incident"]

    def act(
        self, caller: CallerContext, case: dict, action: str, *, key: str | None = None, **fields
    ) -> dict:
        return self.events(caller).act(
            case["id"], action, case["version"], key or new_key(), fields or None
        )

    def refuse(self, caller: CallerContext, case: dict, action: str, **fields) -> RemoteError:
        return refused(
            self.events(caller).act, case["id"], action, case["version"], new_key(), fields or None
        )

    def get(self, case: dict, caller: CallerContext = ADMIN) -> dict:
        return self.events(caller).get_incident(case["id"])

    def to_state(self, case: dict, state: str, department: str = COMMITTEE_A) -> dict:
        """Move a case of GRID_A1/A2 (owned by the village A centre) on to `state` along the
        ordinary path; `department` is one of village A's departments."""
        handler = {COMMITTEE_A: VILLAGE_COMMITTEE_A, MEDIATION_A: MEDIATION_HANDLER_A}[department]
        grid_worker = WORKER_A1 if case["grid_code"] == GRID_A1 else WORKER_A2
        path = [
            ("accepted", VILLAGE_A_CENTRE, "accept", {}),
            ("registered", VILLAGE_A_CENTRE, "register", {}),
            ("dispatched", VILLAGE_A_CENTRE, "dispatch", {"department_code": department}),
            ("handling", handler, "sign", {}),
            ("awaiting_verification", handler, "feedback", {"result": "已处置"}),
            ("verified", grid_worker, "verify", {"passed": True}),
            ("closed", VILLAGE_A_CENTRE, "close", {}),
        ]
        states = [step[0] for step in path]
        assert state in states, state
        start = 0 if case["state"] == "reported" else states.index(case["state"]) + 1
        for reached, caller, action, fields in path[start:]:
            case = self.act(caller, case, action, **fields)
            assert case["state"] == reached
            if reached == state:
                break
        return case


# ---------------------------------------------------------------- the events database


@contextmanager
def events_database(settings: Settings) -> Iterator[Database]:
    client = new_client(settings, app_name="gridwork-tests")
    try:
        yield client[settings.database_name("events")]
    finally:
        client.close()


def move_deadlines(
    db: Database,
    case: dict,
    *,
    warn_ago: timedelta | None,
    due_ago: timedelta | None,
    now: datetime | None = None,
) -> None:
    """Test setup: pretend time passed by moving the current stage's warning and due
    moments into the past (None leaves a moment as it is). "Ago" counts back from `now`,
    by default the time of the case's latest step as the events service stamped it: its
    own clock (pinned in-process, the machine's in a subprocess), a moment ago."""
    if now is None:
        stored = db["incidents"].find_one({"_id": case["id"]}, {"timeline.at": 1})
        assert stored is not None, case["id"]
        now = max(entry["at"] for entry in stored["timeline"])
    changes = {}
    if warn_ago is not None:
        changes["stage_warn_at"] = now - warn_ago
    if due_ago is not None:
        changes["stage_due"] = now - due_ago
    result = db["incidents"].update_one({"_id": case["id"]}, {"$set": changes})
    assert result.matched_count == 1


def events_container(services):
    return next(c for c in services.containers if c.service_name == "events")


def run_timer(services, name: str):
    """Fire one of the events service's timers (`check_deadlines`, `resend_outbox`) now."""
    with entrypoint_hook(events_container(services), name) as hook:
        return hook()


# ---------------------------------------------------------------- what a tap receives


def action_of(routing_key: str) -> str:
    return routing_key.split(".")[1]


def check_envelope(routing_key: str, body: dict) -> CloudEvent:
    """Every incident event is a CloudEvents 1.0 object agreeing with its routing key:
    incident.<action>.<department>.<county>.<township>.<village>.<grid>."""
    event = parse_event(body)
    words = routing_key.split(".")
    assert len(words) == 7 and words[0] == "incident", routing_key
    _, action, department, county, township, village, grid = words
    assert body["specversion"] == "1.0"
    assert event.type == f"gridwork.incident.{action}"
    assert event.source == EVENT_SOURCE
    assert event.datacontenttype == "application/json"
    assert event.subject == grid == event.data["grid_code"]
    assert (county, township, village) == (grid[:6], grid[:9], grid[:12])
    assert event.extensions["department"] == department
    assert department == (event.data["department"] or "none")
    assert event.data["event"] == action
    return event
