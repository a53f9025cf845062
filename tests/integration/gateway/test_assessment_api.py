"""The assessment routes over HTTP against the real services: every kind of period, the
errors a client can act on, and publication of ended periods only."""

import uuid

import pytest

from devstack.processes import wait_until
from gridwork_common.clock import china_today
from services.assessment.domain.periods import periods_of
from tests.population_data import COUNTY, GRID_A1

pytestmark = pytest.mark.integration

API_ROOT = "/api/v1"
API = f"{API_ROOT}/assessment"
POINT_A1 = [102.505, 24.305]
PROBLEM_JSON = "application/problem+json"


def problem_of(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    if field is not None:
        assert field in body.get("field", "") + body.get("detail", ""), body
    return body


def test_a_report_through_the_gateway_counts_in_every_period_containing_today(
    county, as_user, clock, account_events
):
    reported = as_user("worker-a1").post(
        f"{API_ROOT}/incidents",
        key=uuid.uuid4().hex,
        json={"category": "04.01", "description": "垃圾堆积", "location": POINT_A1},
    )
    assert reported.status_code == 201, reported.get_json()
    # The report's own incident.reported is the reporter's action: no account.action.
    assert [event.type for event in account_events()] == ["gridwork.account.login"]
    today = china_today(clock)  # the services' (pinned) today
    periods = periods_of(today)
    leader = as_user("leader")

    def grid_board(period):
        board = leader.get(f"{API}/scorecards", query_string={"level": "grid", "period": period})
        assert board.status_code == 200, board.get_json()
        assert board.get_json()["period"] == period
        return {item["subject"]: item for item in board.get_json()["items"]}

    wait_until(lambda: GRID_A1 in grid_board(today.isoformat()), 15, "the report to be counted")
    for period in periods:
        card = grid_board(period)[GRID_A1]
        assert card["indicators"]["cases_reported"] == 1, period
        indicators = leader.get(
            f"{API}/indicators", query_string={"territory": COUNTY, "period": period}
        ).get_json()
        assert indicators["cases_reported"] == 1, period
        assert set(indicators["rates"]) >= {"on_time_rate", "handling_hours_p90"}
    # and the worker's login and report are account activity (the report is the one action)
    [worker] = [
        i
        for i in leader.get(
            f"{API}/scorecards", query_string={"level": "worker", "period": periods[0]}
        ).get_json()["items"]
        if i["subject"] == "worker-a1"
    ]
    assert worker["indicators"]["logins"] >= 1 and worker["indicators"]["actions"] == 1


@pytest.mark.parametrize(
    ("period", "status"),
    [
        ("2026-13", 400),  # refused by the gateway's schema
        ("2026-W60", 400),
        ("2026-Q5", 400),
        ("26-11", 400),
        ("2026-11-31", 400),  # no such day: the stated period grammar (gridwork_common.periods)
    ],
)
def test_a_malformed_period_is_a_problem_naming_it(county, as_user, period, status):
    response = as_user("leader").get(
        f"{API}/scorecards", query_string={"level": "grid", "period": period}
    )
    problem_of(response, status, "period")


def test_only_an_ended_period_can_be_published(county, as_user, clock):
    admin = as_user("admin")
    this_month = china_today(clock).strftime("%Y-%m")
    problem_of(
        admin.post(f"{API}/publications", key="p1", json={"level": "grid", "period": this_month}),
        409,
        "period",
    )
    long_ago = str(china_today(clock).year - 1)
    published = admin.post(
        f"{API}/publications", key="p2", json={"level": "grid", "period": long_ago}
    )
    assert published.status_code == 200, published.get_json()
    listed = admin.get(f"{API}/publications", query_string={"level": "grid", "period": long_ago})
    assert [board["rules_version"] for board in listed.get_json()["items"]] == [1]


def test_recomputing_under_an_unknown_rule_version_names_it(county, as_user):
    response = as_user("leader").get(
        f"{API}/scorecards", query_string={"level": "grid", "period": "2026-10", "rules_version": 9}
    )
    problem_of(response, 422, "rules_version")
