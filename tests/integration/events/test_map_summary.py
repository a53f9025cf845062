"""map_summary: what the command centre's map draws (open and overdue cases per grid and
the cases as points), under a territory node, within the caller's scope, with filters."""

from datetime import timedelta

from tests.integration.events.conftest import ADMIN, VILLAGE_A_CENTRE
from tests.integration.events.support import (
    POINT_B1,
    VILLAGE_B_CENTRE,
    WORKER_B1,
    assert_names_field,
    events_database,
    move_deadlines,
    refused,
    run_timer,
)
from tests.population_data import COUNTY, GRID_A1, GRID_B1, VILLAGE_A

MINUTE = timedelta(minutes=1)


def summary(as_user, caller, territory=COUNTY, **filters):
    return as_user(caller).events.map_summary(territory, filters)


def test_open_and_overdue_cases_per_grid_follow_the_deadline_timer_and_closing(
    desk, as_user, services, settings
):
    late = desk.report()
    desk.report(urgency="urgent")
    in_b = desk.report(WORKER_B1, point=POINT_B1)
    with events_database(settings) as db:
        move_deadlines(db, late, warn_ago=MINUTE * 2, due_ago=MINUTE)
    run_timer(services, "check_deadlines")

    county = summary(as_user, ADMIN)
    assert county["grids"] == {
        GRID_A1: {"open": 2, "overdue": 1},
        GRID_B1: {"open": 1, "overdue": 0},
    }
    points = {point["id"]: point for point in county["cases"]}
    assert len(points) == 3 and {late["id"], in_b["id"]} <= set(points)
    assert county["truncated"] is False
    assert points[late["id"]]["overdue"] is True
    assert points[late["id"]]["grid_code"] == GRID_A1
    assert [points[in_b["id"]]["lon"], points[in_b["id"]]["lat"]] == POINT_B1

    desk.act(VILLAGE_A_CENTRE, desk.get(late), "reject", reason="invalid")
    after = summary(as_user, ADMIN)
    assert after["grids"][GRID_A1] == {"open": 1, "overdue": 0}
    assert late["id"] not in {point["id"] for point in after["cases"]}  # open cases only
    rejected = summary(as_user, ADMIN, state="rejected")
    assert [point["id"] for point in rejected["cases"]] == [late["id"]]
    assert rejected["grids"] == {}  # the colours count open cases


def test_the_caller_sees_only_their_scope_and_the_filters_narrow(desk, as_user):
    desk.report(urgency="urgent")
    desk.report(WORKER_B1, point=POINT_B1)

    assert set(summary(as_user, VILLAGE_B_CENTRE)["grids"]) == {GRID_B1}
    assert summary(as_user, VILLAGE_B_CENTRE, VILLAGE_A) == {
        "territory": VILLAGE_A,
        "grids": {},
        "cases": [],
        "truncated": False,
    }
    assert set(summary(as_user, VILLAGE_A_CENTRE)["grids"]) == {GRID_A1}
    assert set(summary(as_user, ADMIN, urgency="urgent")["grids"]) == {GRID_A1}
    assert summary(as_user, ADMIN, category="01.01")["grids"] == {}
    assert summary(as_user, ADMIN, reported_to="2000-01-01T00:00:00+08:00")["cases"] == []
    assert len(summary(as_user, ADMIN, reported_from="2000-01-01T00:00:00+08:00")["cases"]) == 2

    for field, value in (("state", "lost"), ("urgency", "soon"), ("reported_from", "today")):
        error = refused(as_user(ADMIN).events.map_summary, COUNTY, {field: value})
        assert_names_field(error, field)
    assert_names_field(refused(as_user(ADMIN).events.map_summary, COUNTY, {"x": 1}), "x")
