"""Patrol indicators worked out by hand on the plain definition: patrols, hours and
distance per worker and grid, the latest revision of a patrol counting once, the share of
grids patrolled, and the facts dated by when the patrol started."""

from datetime import UTC, datetime

from gridwork_common.events import new_event
from services.assessment.domain.indicators import indicators_by_subject
from services.assessment.domain.periods import Period
from services.assessment.facts import fact_from_event

A1, A2, B1 = "530402001001001", "530402001001002", "530402002001001"
NOVEMBER = Period.parse("2026-11")
SENT = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def patrol_fact(patrol_id, worker, grid, crossed, *, revision="patrol.finished", sent=SENT, **data):
    payload = new_event(
        source="/counties/530402/population",
        routing_key=revision,
        subject=grid,
        data={
            "patrol_id": patrol_id,
            "worker_id": worker,
            "grid_code": grid,
            "grid_codes": crossed,
            "distance_m": 1234.4,
            "duration_s": 1800,
            "started_at": "2026-11-18T09:00:00+08:00",
            "ended_at": "2026-11-18T09:30:00+08:00",
            "flags": [],
            **data,
        },
        now=sent,
    ).to_json_dict()
    return fact_from_event(payload)


def grid_fact(code):
    payload = new_event(
        source="/counties/530402/population",
        routing_key="grid.updated",
        subject=code,
        data={"code": code, "name": "网格"},
        now=datetime(2025, 1, 1, tzinfo=UTC),  # imported long before the period
    ).to_json_dict()
    return fact_from_event(payload)


def test_a_patrol_fact_is_dated_by_its_start_and_knows_when_it_was_sent():
    late = patrol_fact("p1", "w1", A1, [A1], started_at="2026-10-31T23:30:00+08:00")
    assert (late["day"], late["period"], late["actor"]) == ("2026-10-31", "2026-10", "w1")
    assert late["sent"] == SENT and late["path"][-1] == A1


def test_patrols_hours_and_distance_per_worker_and_grid():
    facts = [
        patrol_fact("p1", "w1", A1, [A1, A2]),
        patrol_fact("p2", "w1", A1, [A1], distance_m=100.6, duration_s=600, flags=["too_fast"]),
        patrol_fact("p3", "w2", A2, [A2], duration_s=3600),
    ]
    workers = indicators_by_subject(facts, "worker", NOVEMBER, ())
    assert (workers["w1"].patrols, workers["w1"].patrol_seconds) == (2, 2400)
    assert workers["w1"].patrol_distance_m == 1234 + 101
    assert workers["w1"].flagged_patrols == 1
    assert workers["w1"].patrol_hours == 0.67
    grids = indicators_by_subject(facts, "grid", NOVEMBER, ())
    assert (grids[A1].patrols, grids[A2].patrols) == (2, 1)
    village = indicators_by_subject(facts, "village", NOVEMBER, ())["530402001001"]
    assert (village.patrols, village.patrol_seconds) == (3, 1800 + 600 + 3600)


def test_a_revised_patrol_counts_once_in_its_latest_revision():
    later = SENT.replace(hour=6)
    facts = [
        patrol_fact("p1", "w1", A1, [A1], revision="patrol.updated", sent=later, distance_m=900),
        patrol_fact("p1", "w1", A1, [A1], distance_m=500),  # the finish, sent first
    ]
    worker = indicators_by_subject(facts, "worker", NOVEMBER, ())["w1"]
    assert (worker.patrols, worker.patrol_distance_m) == (1, 900)


def test_the_share_of_grids_patrolled_counts_the_grids_without_a_patrol():
    facts = [grid_fact(A1), grid_fact(A2), grid_fact(B1), patrol_fact("p1", "w1", A1, [A1])]
    county = indicators_by_subject(facts, "county", NOVEMBER, ())["530402"]
    assert (county.grids_patrolled, county.grids_total) == (1, 3)
    assert county.patrol_coverage == 1 / 3
    village = indicators_by_subject(facts, "village", NOVEMBER, ())["530402001001"]
    assert village.patrol_coverage == 0.5
    grids = indicators_by_subject(facts, "grid", NOVEMBER, ())
    assert set(grids) == {A1}  # a grid with nothing at all to show is not listed for it
    # under a node: only its grids
    inside = indicators_by_subject(facts, "county", NOVEMBER, (), within="530402001")
    assert (inside["530402"].grids_patrolled, inside["530402"].grids_total) == (1, 2)


def test_a_worker_is_judged_on_the_grids_they_worked_in():
    facts = [
        patrol_fact("p1", "w1", A1, [A1, B1]),  # wandered into B1, not one of w1's grids
        fact_from_event(
            new_event(
                source="/counties/530402/population",
                routing_key="visit.recorded",
                subject=A2,
                data={"grid_code": A2, "worker_id": "w1", "at": "2026-11-18T10:00:00+08:00"},
                now=SENT,
            ).to_json_dict()
        ),
    ]
    worker = indicators_by_subject(facts, "worker", NOVEMBER, ())["w1"]
    assert (worker.grids_patrolled, worker.grids_total) == (1, 2)  # A1 of A1 and A2


def test_patrols_of_another_month_do_not_count():
    facts = [patrol_fact("p1", "w1", A1, [A1], started_at="2026-10-31T23:30:00+08:00")]
    assert indicators_by_subject(facts, "worker", NOVEMBER, ()) == {}
