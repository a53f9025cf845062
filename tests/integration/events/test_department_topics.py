"""What a department's or a township's own system receives when it binds a plain AMQP
queue to the `events.events` topic exchange with the routing-key patterns documented in
services/events/topics.py:

    incident.<action>.<department>.<county>.<township>.<village>.<grid>

Every message is a CloudEvents 1.0 JSON object whose subject is the grid code and whose
`department` extension attribute names the department the case is with (or "none")."""

import pytest

from tests.integration.events.conftest import (
    TOWNSHIP_A_CENTRE,
    VILLAGE_A_CENTRE,
    VILLAGE_COMMITTEE_A,
    WORKER_A1,
)
from tests.integration.events.support import (
    COMMITTEE_A,
    MEDIATION_A,
    POINT_A2,
    POINT_B1,
    VILLAGE_B_CENTRE,
    WORKER_A2,
    WORKER_B1,
    action_of,
    check_envelope,
)
from tests.population_data import COUNTY, GRID_A1, GRID_A2, GRID_B1, TOWNSHIP_A, TOWNSHIP_B

pytestmark = pytest.mark.integration


def received_by_case(received) -> dict[str, list[str]]:
    """incident id -> the actions received about it, in order; every envelope checked."""
    by_case: dict[str, list[str]] = {}
    for key, body in received:
        event = check_envelope(key, body)
        by_case.setdefault(event.data["incident_id"], []).append(action_of(key))
    return by_case


def test_a_department_binding_receives_exactly_the_events_of_cases_dispatched_to_it(
    desk, department_tap
):
    committee = department_tap(f"incident.*.{COMMITTEE_A}.#")
    mediation = department_tap(f"incident.*.{MEDIATION_A}.#")

    ours = desk.to_state(desk.report(category="04.01"), "handling", department=COMMITTEE_A)
    ours = desk.act(TOWNSHIP_A_CENTRE, ours, "supervise", note="尽快清运")
    ours = desk.act(VILLAGE_COMMITTEE_A, ours, "feedback", result="已清运")
    ours = desk.act(WORKER_A1, ours, "verify", passed=False, comment="还有残留")
    ours = desk.act(VILLAGE_COMMITTEE_A, ours, "feedback", result="已彻底清运")
    ours = desk.to_state(ours, "closed")
    ours = desk.act(WORKER_A1, ours, "evaluate", satisfaction=4)
    theirs = desk.to_state(desk.report(category="01.01"), "handling", department=MEDIATION_A)
    never_dispatched = desk.to_state(desk.report(category="04.01"), "registered")

    committee_received = committee()
    assert received_by_case(committee_received) == {
        ours["id"]: [
            "dispatched",
            "signed",
            "supervised",
            "handled",
            "reworked",
            "handled",
            "verified",
            "closed",
            "evaluated",
        ]
    }
    assert {body["department"] for _, body in committee_received} == {COMMITTEE_A}
    assert received_by_case(mediation()) == {theirs["id"]: ["dispatched", "signed"]}
    assert never_dispatched["department"] is None

    # A handler can find what it received: the envelope carries the case's own fields.
    dispatched = committee_received[0][1]["data"]
    assert dispatched["incident_id"] == ours["id"] and dispatched["category"] == "04.01"
    assert dispatched["description"] and dispatched["location"] is not None
    assert dispatched["owning_centre"] == ours["owning_centre"]
    closed = next(body for key, body in committee_received if action_of(key) == "closed")
    assert closed["data"]["closed_at"] is not None and closed["data"]["rework_count"] == 1


def test_a_township_binding_receives_all_and_only_the_events_of_its_subtree(desk, department_tap):
    township_a = department_tap(f"incident.*.*.{COUNTY}.{TOWNSHIP_A}.#")
    township_b = department_tap(f"incident.*.*.{COUNTY}.{TOWNSHIP_B}.#")

    in_a1 = desk.to_state(desk.report(), "dispatched", department=COMMITTEE_A)
    in_a2 = desk.report(WORKER_A2, point=POINT_A2)
    in_a2 = desk.act(VILLAGE_A_CENTRE, in_a2, "reject", reason="invalid")
    in_b1 = desk.report(WORKER_B1, point=POINT_B1)
    in_b1 = desk.act(VILLAGE_B_CENTRE, in_b1, "accept")
    mediated = desk.to_state(desk.report(category="01.01"), "accepted")

    received_a = township_a()
    assert received_by_case(received_a) == {
        in_a1["id"]: ["reported", "accepted", "registered", "dispatched"],
        in_a2["id"]: ["reported", "rejected"],
        mediated["id"]: ["reported", "accepted"],
    }
    assert {body["subject"] for _, body in received_a} == {GRID_A1, GRID_A2}
    received_b = township_b()
    assert received_by_case(received_b) == {in_b1["id"]: ["reported", "accepted"]}
    assert {body["subject"] for _, body in received_b} == {GRID_B1}
    assert {body["department"] for _, body in received_b} == {"none"}


def test_a_closures_binding_receives_only_closures(desk, department_tap):
    closures = department_tap("incident.closed.#")

    on_the_spot = desk.report(resolved_on_spot=True, media_ids=["photo-1"])
    handled = desk.to_state(desk.report(category="01.01"), "closed", department=MEDIATION_A)
    desk.act(WORKER_A1, handled, "evaluate", satisfaction=3)
    still_open = desk.to_state(desk.report(), "verified")

    received = closures()
    assert received_by_case(received) == {on_the_spot["id"]: ["closed"], handled["id"]: ["closed"]}
    departments = {body["data"]["incident_id"]: body["department"] for _, body in received}
    assert departments == {on_the_spot["id"]: "none", handled["id"]: MEDIATION_A}
    spot = next(body for _, body in received if body["data"]["incident_id"] == on_the_spot["id"])
    assert spot["data"]["resolved_on_spot"] is True and spot["data"]["state"] == "closed"
    assert still_open["state"] == "verified"
