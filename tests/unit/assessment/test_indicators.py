"""Each indicator on a small county worked out by hand (the facts below are the whole
world of these tests; every expected number is counted in the comments)."""

from fractions import Fraction

import pytest

from gridwork_common.errors import InvalidInput
from services.assessment.domain.indicators import (
    Indicators,
    indicators_by_subject,
    nearest_rank,
    subject_of,
)
from services.assessment.domain.periods import Period

GRID_A = "530402001001001"
GRID_B = "530402001001002"  # same village as A
GRID_C = "530402002001001"  # another township
NOVEMBER = Period.parse("2026-11")
# Sunday 1 November is a rest day; three working days keep the activity sums small.
WORKING_DAYS = {"2026-11-02", "2026-11-03", "2026-11-04"}


def fact(type_, day, grid, actor=None, incident=None, department=None, **data):
    return {
        "type": type_,
        "day": day,
        "period": day[:7],
        "path": [grid[:6], grid[:9], grid[:12], grid],
        "department": department,
        "actor": actor,
        "incident_id": incident,
        "data": data,
    }


def case(incident, grid, *steps, urgency="normal", department=None):
    """One fact per (action, day[, extra data]) step of a case."""
    facts = []
    for step in steps:
        action, day, *extra = step
        data = {"urgency": urgency, **(extra[0] if extra else {})}
        actor = data.pop("actor", "h1")
        facts.append(fact(f"incident.{action}", day, grid, actor, incident, department, **data))
    return facts


FACTS = [
    # c1: reported, closed on time after 120 working minutes, verified, evaluated 5
    *case(
        "c1",
        GRID_A,
        ("reported", "2026-11-02", {"actor": "w1"}),
        ("verified", "2026-11-05"),
        ("closed", "2026-11-05", {"handling_working_minutes": 120}),
        ("evaluated", "2026-11-06", {"satisfaction": 5}),
    ),
    # c2: urgent, overdue, then closed after 600 minutes: due and closed, not on time
    *case(
        "c2",
        GRID_A,
        ("reported", "2026-11-03", {"actor": "w1"}),
        ("overdue", "2026-11-04", {"actor": None}),
        ("closed", "2026-11-06", {"handling_working_minutes": 600}),
        urgency="urgent",
    ),
    # c3: sent back twice, then verified and closed on time (300 minutes), evaluated 3
    *case(
        "c3",
        GRID_A,
        ("reported", "2026-11-03", {"actor": "w1"}),
        ("reworked", "2026-11-07"),
        ("reworked", "2026-11-08"),
        ("verified", "2026-11-09"),
        ("closed", "2026-11-09", {"handling_working_minutes": 300}),
        ("evaluated", "2026-11-10", {"satisfaction": 3}),
    ),
    # c4: still open, escalated and supervised
    *case(
        "c4",
        GRID_A,
        ("reported", "2026-11-10", {"actor": "w1"}),
        ("escalated", "2026-11-11", {"actor": None}),
        ("supervised", "2026-11-11", {"actor": "leader"}),
    ),
    # c5: reported in October; its deadline was extended, yet it went overdue
    *case(
        "c5",
        GRID_A,
        ("reported", "2026-10-30", {"actor": "w1"}),
        ("extended", "2026-11-02"),
        ("overdue", "2026-11-20", {"actor": None}),
    ),
    # c6, another township: closed after 60 minutes
    *case(
        "c6",
        GRID_C,
        ("reported", "2026-11-04", {"actor": "w3"}),
        ("closed", "2026-11-04", {"handling_working_minutes": 60}),
    ),
    # visits and the month's obligations (October's must not count in November)
    fact("visit.recorded", "2026-11-03", GRID_A, "w1", risk_level="high"),
    fact("visit.recorded", "2026-11-04", GRID_A, "w1", risk_level="high"),
    fact("visit.recorded", "2026-11-05", GRID_B, "w2", risk_level="medium"),
    {
        **fact("visit.obligations", "2026-12-01", GRID_A, "system"),
        "period": "2026-11",
        "data": {
            "rows": [
                {"worker_id": "w1", "risk_level": "high", "required": 4, "done": 2},
                {"worker_id": "w1", "risk_level": "low", "required": 1, "done": 1},
            ]
        },
    },
    {
        **fact("visit.obligations", "2026-12-01", GRID_B, "system"),
        "period": "2026-11",
        "data": {"rows": [{"worker_id": "w2", "risk_level": "medium", "required": 2, "done": 2}]},
    },
    {
        **fact("visit.obligations", "2026-11-01", GRID_A, "system"),
        "period": "2026-10",
        "data": {"rows": [{"worker_id": "w1", "risk_level": "high", "required": 9, "done": 0}]},
    },
    # records collected
    fact("resident.registered", "2026-11-02", GRID_A, "w1"),
    fact("resident.updated", "2026-11-03", GRID_A, "w1"),
    fact("resident.moved", "2026-11-05", GRID_B, "w2"),
    fact("resident.registered", "2026-10-31", GRID_A, "w1"),  # October
    # account activity: w1 on two working days (and on Sunday), w2 on one
    fact("account.login", "2026-11-01", GRID_A, "w1"),
    fact("account.login", "2026-11-02", GRID_A, "w1"),
    fact("account.action", "2026-11-02", GRID_A, "w1"),
    fact("account.action", "2026-11-03", GRID_A, "w1"),
    fact("account.login", "2026-11-04", GRID_B, "w2"),
]


def by(level, period=NOVEMBER, facts=FACTS, within=None):
    return indicators_by_subject(facts, level, period, WORKING_DAYS, within)


def test_case_counts_of_a_grid():
    grid = by("grid")[GRID_A]
    assert grid.cases_handled == 5  # c1-c5 all had a fact in November
    assert grid.cases_reported == 4  # c5 was reported in October
    assert grid.cases_due == 4  # closed c1, c2, c3; overdue c2, c5
    assert grid.cases_closed == 3
    assert grid.closed_on_time == 2  # c1, c3 (c2 went overdue)
    assert grid.approved_deferrals == 1  # c5
    assert (grid.urgent_due, grid.urgent_closed, grid.urgent_closed_on_time) == (1, 1, 0)
    assert (grid.overdue, grid.escalated, grid.supervised) == (2, 1, 1)
    assert (grid.reworked, grid.reworked_cases, grid.verified_or_reworked) == (2, 1, 2)


def test_rates_of_a_grid():
    grid = by("grid")[GRID_A]
    assert grid.closure_rate == 0.75  # 3 / 4
    assert grid.on_time_rate == pytest.approx(2 / 3)  # 2 / (4 - 1)
    assert grid.urgent_closure_rate == 1.0
    assert grid.urgent_on_time_rate == 0.0
    assert grid.rework_rate == 0.5  # c3 of c1, c3
    assert grid.escalation_rate == 0.2  # c4 of five cases
    assert grid.satisfaction == 4.0  # (5 + 3) / 2


def test_handling_time_in_working_hours():
    grid = by("grid")[GRID_A]
    assert (grid.handling_count, grid.handling_minutes_total) == (3, 1020)
    assert grid.handling_hours_average == 5.67  # 1020 / 3 / 60
    assert grid.handling_hours_p90 == 10.0  # rank ceil(0.9 * 3) = 3 of 120, 300, 600
    county = by("county")["530402"]
    assert county.handling_hours_average == 4.5  # (60 + 120 + 300 + 600) / 4 / 60
    assert county.handling_hours_p90 == 10.0  # rank ceil(3.6) = 4


def test_higher_levels_add_up_their_subtrees():
    townships = by("township")
    assert set(townships) == {"530402001", "530402002"}
    assert townships["530402002"].cases_closed == 1
    assert by("county")["530402"].cases_handled == 6
    assert by("village")["530402001001"].cases_handled == 5


def test_visit_coverage_counts_whole_months_of_obligations():
    village = by("village")["530402001001"]
    assert village.visits_recorded == 3
    assert dict(village.visits_required_by_risk) == {"high": 4, "medium": 2, "low": 1}
    assert dict(village.visits_done_by_risk) == {"high": 2, "medium": 2, "low": 1}
    assert village.visit_coverage() == pytest.approx(5 / 7)
    assert village.visit_coverage({"high": 3, "medium": 2, "low": 1}) == pytest.approx(11 / 17)
    w1 = by("worker")["w1"]
    assert w1.visit_coverage() == 0.6  # (2 + 1) / (4 + 1)
    # a week is not made of whole months: coverage does not apply
    week = by("worker", Period.parse("2026-W45"))["w1"]
    assert week.visit_coverage() is None
    assert week.visits_recorded == 2


def test_records_collected_per_worker():
    workers = by("worker")
    assert workers["w1"].records_collected == 2  # October's registration is not counted
    assert workers["w2"].records_collected == 1


def test_account_activity_on_working_days():
    w1 = by("worker")["w1"]
    # 2 account actions and the 4 cases w1 reported in November (c1-c4): the gateway
    # announces a report by its incident.reported, not by an account.action
    assert (w1.logins, w1.actions) == (2, 6)
    assert (w1.active_account_days, w1.expected_account_days) == (2, 3)  # Sunday not counted
    assert w1.account_activity_rate == pytest.approx(2 / 3)
    village = by("village")["530402001001"]  # grid workers w1 and w2
    assert (village.active_account_days, village.expected_account_days) == (3, 6)
    assert village.account_activity_rate == 0.5


def test_a_report_makes_its_day_active_for_its_reporter_only():
    w3 = by("worker")["w3"]  # no login or account action: reported c6 on Wednesday 4th
    assert (w3.logins, w3.actions) == (0, 1)
    assert (w3.active_account_days, w3.expected_account_days) == (1, 3)
    township = by("township")["530402002"]
    assert (township.actions, township.active_account_days) == (1, 1)
    # a report without a person (Open311, the system) is nobody's action or activity
    facts = [
        fact("visit.recorded", "2026-11-03", GRID_C, "w3", risk_level="low"),
        fact("incident.reported", "2026-11-04", GRID_C, None, "c9"),
    ]
    township = by("township", facts=facts)["530402002"]
    assert (township.actions, township.active_account_days) == (0, 0)
    # a case step other than the report is not an account action
    facts = [fact("incident.closed", "2026-11-04", GRID_C, "w3", "c6")]
    assert by("worker", facts=facts) == {}
    assert by("grid", facts=facts)[GRID_C].actions == 0


def test_grid_workers_who_never_log_in_are_inactive_not_exempt():
    facts = [fact("visit.recorded", "2026-11-03", GRID_C, "w3", risk_level="low")]
    township = by("township", facts=facts)["530402002"]
    assert (township.active_account_days, township.expected_account_days) == (0, 3)
    assert township.account_activity_rate == 0.0


def test_a_case_counts_for_the_grid_workers_who_acted_on_it_in_the_period():
    workers = by("worker")
    w1 = workers["w1"]  # reported c1-c4 in November (c5 in October)
    assert (w1.cases_handled, w1.cases_reported, w1.cases_closed, w1.closed_on_time) == (4, 4, 3, 2)
    assert workers["w3"].cases_reported == 1
    # Only grid workers (who report, visit, collect records) are ranked as workers: the
    # handler and the leader are assessed through their departments and centres.
    assert set(workers) == {"w1", "w2", "w3"}


def test_a_case_late_before_the_period_is_not_closed_on_time_in_it():
    facts = [
        *case("x1", GRID_A, ("overdue", "2026-10-30", {"actor": None})),
        *case("x1", GRID_A, ("closed", "2026-11-02", {"ever_overdue": True})),
        *case("x2", GRID_A, ("closed", "2026-11-02", {"approved_extensions": 1})),
        *case("x3", GRID_A, ("closed", "2026-11-02", {"ever_overdue": False})),
    ]
    grid = by("grid", facts=facts)[GRID_A]
    assert (grid.cases_due, grid.cases_closed, grid.overdue) == (3, 3, 0)
    assert grid.closed_on_time == 1  # x3; x1 ran over in October, x2 was deferred
    assert grid.approved_deferrals == 1
    assert grid.on_time_rate == 0.5  # 1 / (3 - 1)


def test_values_of_the_wrong_type_are_left_out():
    facts = case(
        "y1",
        GRID_A,
        ("closed", "2026-11-02", {"handling_working_minutes": True}),
        ("evaluated", "2026-11-03", {"satisfaction": 9}),
    ) + case("y2", GRID_A, ("closed", "2026-11-02", {"handling_working_minutes": -5}))
    grid = by("grid", facts=facts)[GRID_A]
    assert (grid.handling_count, grid.satisfaction_count) == (0, 0)


def test_departments_count_their_cases_and_ignore_none():
    facts = [
        *case("d1", GRID_A, ("closed", "2026-11-05"), department="530402-police"),
        *case("d2", GRID_A, ("overdue", "2026-11-05"), department="530402-police"),
        *case("d3", GRID_A, ("reported", "2026-11-05"), department="none"),
    ]
    departments = by("department", facts=facts)
    assert list(departments) == ["530402-police"]
    assert departments["530402-police"].closure_rate == 0.5


def test_within_keeps_one_subtree():
    assert set(by("grid", within="530402002")) == {GRID_C}


def test_a_day_period_counts_only_that_day():
    day = by("grid", Period.parse("2026-11-03"))[GRID_A]
    assert day.cases_reported == 2  # c2, c3
    assert day.cases_due == 0


def test_nearest_rank_percentile():
    assert nearest_rank(list(range(1, 11)), Fraction(9, 10)) == 9
    assert nearest_rank([5], Fraction(9, 10)) == 5
    assert nearest_rank([], Fraction(9, 10)) is None
    assert nearest_rank([1, 2], Fraction(9, 10)) == 2


def test_subject_of_an_unknown_level_names_the_field():
    with pytest.raises(InvalidInput) as caught:
        subject_of(FACTS[0], "planet")
    assert caught.value.field == "level"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reworked_cases": 2, "verified_or_reworked": 1}, "reworked_cases"),
        ({"escalated": 1}, "escalated"),
        ({"handling_count": 1}, "handling_count"),
        ({"handling_minutes_p90": -1}, "handling_minutes_p90"),
        ({"satisfaction_total": -1}, "satisfaction_total"),
    ],
)
def test_impossible_counts_are_refused_naming_the_field(changes, field):
    with pytest.raises(InvalidInput) as caught:
        Indicators(**changes)
    assert caught.value.field == field


def test_empty_denominators_give_no_rate():
    empty = Indicators()
    assert all(value is None for value in empty.rates().values())
