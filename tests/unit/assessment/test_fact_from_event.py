"""How an event becomes a fact: whom it is about, where, and when it counts."""

from datetime import UTC, datetime

from gridwork_common.events import new_event
from services.assessment.facts import fact_from_event

GRID = "530402001001001"
RECEIVED = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 December in China


def fact(routing_key, data, source="events"):
    event = new_event(
        source=f"/counties/530402/{source}",
        routing_key=routing_key,
        subject=GRID,
        data={"grid_code": GRID, **data},
        now=RECEIVED,
    )
    return fact_from_event(event.to_json_dict())


def test_a_deadline_notice_is_about_no_person_not_the_reporter():
    overdue = fact("incident.overdue", {"incident_id": "c1", "actor_id": None, "reporter_id": "w1"})
    assert overdue["actor"] is None
    assert overdue["path"] == ["530402", "530402001", "530402001001", GRID]
    assert (overdue["day"], overdue["period"]) == ("2026-12-01", "2026-12")


def test_a_visit_counts_when_it_was_made():
    visit = fact(
        "visit.recorded",
        {"worker_id": "w1", "at": "2026-11-30T23:00:00+08:00"},
        source="population",
    )
    assert (visit["actor"], visit["day"], visit["period"]) == ("w1", "2026-11-30", "2026-11")


def test_obligations_count_for_the_month_they_were_for():
    obligations = fact("visit.obligations", {"period": "2026-11", "rows": []}, "population")
    assert obligations["period"] == "2026-11"
