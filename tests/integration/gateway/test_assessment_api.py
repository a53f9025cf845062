"""The assessment routes over HTTP against the real services: every kind of period, the
errors a client can act on, and publication of ended periods only."""

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration

API = "/api/v1/assessment"
PROBLEM_JSON = "application/problem+json"


def problem_of(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    if field is not None:
        assert field in body.get("field", "") + body.get("detail", ""), body
    return body


@pytest.mark.parametrize("period", ["2026-11-23", "2026-W48", "2026-11", "2026-Q4", "2026"])
def test_scorecards_of_every_kind_of_period(county, as_user, period):
    board = as_user("leader").get(
        f"{API}/scorecards", query_string={"level": "grid", "period": period}
    )
    assert board.status_code == 200, board.get_json()
    assert board.get_json()["period"] == period
    indicators = as_user("leader").get(
        f"{API}/indicators", query_string={"territory": "530402", "period": period}
    )
    assert indicators.status_code == 200, indicators.get_json()
    assert set(indicators.get_json()["rates"]) >= {"on_time_rate", "handling_hours_p90"}


@pytest.mark.parametrize(
    ("period", "status"),
    [
        ("2026-13", 400),  # refused by the gateway's schema
        ("2026-W60", 400),
        ("2026-Q5", 400),
        ("26-11", 400),
        ("2026-11-31", 422),  # the right shape, but no such day: refused by the service
    ],
)
def test_a_malformed_period_is_a_problem_naming_it(county, as_user, period, status):
    response = as_user("leader").get(
        f"{API}/scorecards", query_string={"level": "grid", "period": period}
    )
    problem_of(response, status, "period")


def test_only_an_ended_period_can_be_published(county, as_user):
    admin = as_user("admin")
    this_month = datetime.now(UTC).strftime("%Y-%m")
    problem_of(
        admin.post(f"{API}/publications", key="p1", json={"level": "grid", "period": this_month}),
        409,
        "period",
    )
    long_ago = (datetime.now(UTC) - timedelta(days=400)).strftime("%Y")
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
