"""End to end: cases driven through the real events service and visits through the real
population service reach the assessment service as events, and score as worked out by
hand from the county's default rule set."""

from datetime import timedelta

import pytest
from nameko.testing.services import entrypoint_hook

from devstack.processes import wait_until
from gridwork_common.mongo import new_client
from services.assessment.service import AssessmentService
from services.events.service import EventsService
from services.population.domain.groups import CHINA_TIME, period_bounds, previous_periods
from services.population.service import PopulationService
from tests.integration.events.conftest import ADMIN, CENTRES, WORKER_A1
from tests.integration.events.support import (
    Desk,
    events_database,
    move_deadlines,
    run_timer,
)
from tests.population_data import GRID_A1, county_features, random_resident_ids

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)
WEEKS_AGO = timedelta(days=21)  # far past any stage's limit: escalated and supervised too


@pytest.fixture
def services(runner_factory, config):
    runner = runner_factory(config, PopulationService, EventsService, AssessmentService)
    runner.start()
    return runner


@pytest.fixture
def as_user(cluster_as, services):
    return cluster_as


@pytest.fixture
def databases(settings):
    client = new_client(settings, app_name="gridwork-tests")
    yield {name: client[settings.database_name(name)] for name in ("population", "assessment")}
    client.close()


def facts_of(databases, type_: str) -> int:
    return databases["assessment"]["facts"].count_documents({"type": type_})


def test_cases_and_visits_through_the_real_services_make_the_expected_scorecards(
    services, as_user, settings, databases, clock
):
    admin = as_user(ADMIN)
    admin.population.import_territory(county_features())
    admin.events.ensure_default_departments(CENTRES)
    desk = Desk(as_user)

    # Four cases in grid A1 this month:
    desk.to_state(desk.report(), "closed")  # on time
    late = desk.report()
    with events_database(settings) as events_db:
        move_deadlines(events_db, late, warn_ago=2 * MINUTE, due_ago=MINUTE)
        run_timer(services, "check_deadlines")  # overdue while waiting to be accepted
        late = desk.to_state(desk.get(late), "closed")
        reworked = desk.to_state(desk.report(), "awaiting_verification")
        reworked = desk.act(WORKER_A1, reworked, "verify", passed=False, comment="垃圾仍在")
        reworked = desk.to_state(reworked, "closed")
        stuck = desk.to_state(desk.report(), "registered")
        move_deadlines(events_db, stuck, warn_ago=WEEKS_AGO + MINUTE, due_ago=WEEKS_AGO)
        run_timer(services, "check_deadlines")  # overdue, escalated and supervised
    assert reworked["rework_count"] == 1 and desk.get(stuck)["supervised"] is True

    # Last month, a high-risk group member needing four visits got three.
    last_month = previous_periods(clock(), 1)[0]
    start = period_bounds(last_month)[0]
    resident = admin.population.register_resident(
        {
            "id_number": random_resident_ids(1, seed=71)[0],
            "name": "王五",
            "grid_code": GRID_A1,
            "residence_type": "registered",
        }
    )
    membership = admin.population.flag_group(resident["id"], "drug_user", "high", "worker-a1")
    databases["population"]["group_memberships"].update_one(
        {"_id": membership["id"]}, {"$set": {"flagged_at": start}}
    )  # test setup: flagged before last month began
    worker = as_user(WORKER_A1).population
    for day in range(3):
        worker.record_visit(
            {
                "membership_id": membership["id"],
                "at": (start + timedelta(days=day + 2, hours=3)).astimezone(CHINA_TIME).isoformat(),
                "location": {"type": "Point", "coordinates": [102.505, 24.305]},
            }
        )
    population = next(c for c in services.containers if c.service_name == "population")
    with entrypoint_hook(population, "publish_overdue_visits") as publish:
        publish()

    wait_until(
        lambda: (
            facts_of(databases, "incident.closed") == 3
            and facts_of(databases, "incident.supervised") == 1
            and facts_of(databases, "visit.obligations") == 1
            and facts_of(databases, "visit.recorded") == 3
        ),
        30,
        "the assessment service to receive every event",
    )
    this_month = clock().astimezone(CHINA_TIME).strftime("%Y-%m")  # working days gone by
    assessment = as_user(ADMIN).assessment

    [grid] = [
        i for i in assessment.scorecards("grid", this_month)["items"] if i["subject"] == GRID_A1
    ]
    counted = grid["indicators"]
    assert counted["cases_reported"] == 4
    assert counted["cases_due"] == 4  # three closed, one overdue and still open
    assert counted["cases_closed"] == 3
    assert counted["closed_on_time"] == 2  # the late one went overdue first
    assert (counted["overdue"], counted["escalated"], counted["supervised"]) == (2, 1, 1)
    assert (counted["reworked"], counted["reworked_cases"]) == (1, 1)
    assert counted["handling_count"] == 3  # every closure carried its working minutes
    assert grid["rates"]["escalation_rate"] == 0.25
    assert grid["rates"]["rework_rate"] == pytest.approx(1 / 3)
    # On time 2 of 4: 50 % is 20 points short of 70 % -> 50 - 20 = 30.
    # Closure 3 of 4: 75 % of the 90 % target -> 20 x 0.75 / 0.9 = 16.67.
    # No urgent cases and no visit obligations this month: full 10 and 10. The grid (known
    # to the assessment from the territory import's grid.updated) was never patrolled:
    # patrols 0 of 5. The grid's worker never logged in through the gateway (these tests
    # call the services directly), but reported the four cases today (Wednesday 18
    # November, pinned): a report is its reporter's activity, one day of the 13 working
    # days gone by (2-18 November): 5 x 1/13 = 0.38. One case sent back: -0.2.
    # 30 + 16.67 + 10 + 10 + 0 + 0.38 - 0.2 = 66.85.
    assert grid["scorecard"]["parts"] == {
        "on_time": 30.0,
        "closure": 16.67,
        "urgent": 10.0,
        "visits": 10.0,
        "patrols": 0.0,
        "activity": 0.38,
    }
    assert grid["scorecard"]["deductions"] == {"rework": 0.2}
    assert grid["total"] == 66.85
    assert (grid["indicators"]["grids_patrolled"], grid["indicators"]["grids_total"]) == (0, 1)
    assert (counted["active_account_days"], counted["expected_account_days"]) == (1, 13)

    # Last month: three of four required visits -> 10 x 3/4 = 7.5; no cases; no logins;
    # no patrol.
    for level, subject in (("grid", GRID_A1), ("worker", "worker-a1")):
        board = assessment.scorecards(level, last_month)
        [card] = [i for i in board["items"] if i["subject"] == subject]
        assert card["rates"]["visit_coverage"] == 0.75, level
        assert card["scorecard"]["parts"]["visits"] == 7.5, level
        assert card["scorecard"]["parts"]["patrols"] == 0.0, level
        assert card["indicators"]["visits_recorded"] == 3, level
    [grid_last_month] = [
        i for i in assessment.scorecards("grid", last_month)["items"] if i["subject"] == GRID_A1
    ]
    assert grid_last_month["total"] == 87.5  # 50 + 20 + 10 + 7.5 + 0 + 0
