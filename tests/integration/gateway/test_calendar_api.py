"""Holiday notices over HTTP against the real services: a county administrator loads 2027's
notice with one PUT and a deadline over New Year moves; /readyz shows the missing notice as a
warning without failing; a deadline policy that depends on it is a 409 naming the field.

The services read the test's pinned clock (`clock` fixture), moved to the days that matter."""

import uuid
from datetime import datetime

import pytest

from gridwork_common.clock import CHINA_TIME
from services.gateway.routes import calendar as models
from tests.integration.gateway.test_incidents_api import API, described, problem_of

pytestmark = pytest.mark.integration

NOTICE_2027 = {
    "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
    "makeup_workdays": [],
    "reference": "2027 notice (test)",
}
NEW_YEAR_EVE = datetime(2026, 12, 31, 17, 30, tzinfo=CHINA_TIME)  # Thursday, 30 min left
POINT_A1 = [102.505, 24.305]


@pytest.fixture
def admin(county, as_user, client):
    user = as_user("admin")

    def put(path, **kwargs):
        return client.put(path, headers=user.headers, **kwargs)

    user.put = put
    return user


def put_notice(admin, year, body):
    return admin.put(f"{API}/calendar/notices/{year}", json=body)


def stage_due_in_china(incident: dict) -> datetime:
    due = datetime.fromisoformat(incident["stage_due"]).astimezone(CHINA_TIME)
    return due.replace(second=0, microsecond=0)


def report(as_user) -> dict:
    body = {"category": "04.01", "description": "楼道口垃圾堆积", "location": POINT_A1}
    response = as_user("worker-a1").post(f"{API}/incidents", key=uuid.uuid4().hex, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["incident"]


def test_an_administrator_loads_a_years_notice_with_one_put(admin, as_user):
    listed = admin.get(f"{API}/calendar/notices").get_json()
    described(models.HolidayNoticeList, listed)
    assert [item["year"] for item in listed["items"]] == list(range(2004, 2027))
    assert problem_of(admin.get(f"{API}/calendar/notices/2027"), 404)

    response = put_notice(admin, 2027, NOTICE_2027)
    assert response.status_code == 200, response.get_json()
    loaded = response.get_json()
    described(models.HolidayNotice, loaded)
    assert loaded["source"] == "county" and loaded["holidays"] == NOTICE_2027["holidays"]
    read = as_user("township-a").get(f"{API}/calendar/notices/2027").get_json()
    assert read == loaded
    listed = admin.get(f"{API}/calendar/notices").get_json()
    assert listed["items"][-1]["year"] == 2027 and listed["last_notice_year"] == 2027
    # The calendar's settings are another resource, untouched.
    assert admin.get(f"{API}/calendar").get_json()["holidays"] == []


@pytest.mark.parametrize(
    ("year", "body", "status", "field"),
    [
        ("27", NOTICE_2027, 400, "year"),  # the path pattern the document states
        ("2027", {**NOTICE_2027, "holidays": ["2026-10-01"]}, 422, "holidays"),
        ("2027", {**NOTICE_2027, "holidays": ["2027-01-01", "2027-01-01"]}, 422, "holidays"),
        ("2027", {**NOTICE_2027, "makeup_workdays": ["2027-01-01"]}, 422, "makeup_workdays"),
        ("2027", {**NOTICE_2027, "makeup_workdays": ["2027-01-04"]}, 422, "makeup_workdays"),
        ("2027", {"holidays": NOTICE_2027["holidays"]}, 400, "makeup_workdays"),
        ("2027", {**NOTICE_2027, "holidays": []}, 400, "holidays"),
        ("2027", {**NOTICE_2027, "festivals": []}, 400, "festivals"),
    ],
)
def test_a_faulty_notice_is_a_problem_naming_the_field(admin, year, body, status, field):
    problem = problem_of(put_notice(admin, year, body), status)
    assert problem["field"] == field, problem


def test_only_an_administrator_loads_a_notice(admin, as_user, client):
    headers = as_user("county-centre").headers
    response = client.put(f"{API}/calendar/notices/2027", headers=headers, json=NOTICE_2027)
    assert problem_of(response, 403)
    assert problem_of(admin.get(f"{API}/calendar/notices/2027"), 404)


def test_a_deadline_over_new_year_moves_once_the_notice_is_loaded(admin, as_user, clock):
    clock.set(NEW_YEAR_EVE)
    guessed = report(as_user)  # accepted within one working hour
    assert stage_due_in_china(guessed) == datetime(2027, 1, 1, 9, 0, tzinfo=CHINA_TIME)
    assert put_notice(admin, 2027, NOTICE_2027).status_code == 200
    clock.set(NEW_YEAR_EVE)
    case = report(as_user)
    assert stage_due_in_china(case) == datetime(2027, 1, 4, 9, 0, tzinfo=CHINA_TIME)


def test_readyz_warns_of_the_missing_notice_and_stays_ready(admin, client, clock):
    body = client.get("/readyz").get_json()
    assert body["warnings"] == [] and body["status"] == "up"

    clock.set(datetime(2026, 12, 1, 10, tzinfo=CHINA_TIME))
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "up" and body["down"] == []
    assert body["warnings"] == ["events.calendar"]
    calendar = body["components"]["events"]["components"]["calendar"]
    assert calendar["status"] == "warning" and calendar["missing_years"] == [2027]

    assert put_notice(admin, 2027, NOTICE_2027).status_code == 200
    assert client.get("/readyz").get_json()["warnings"] == []


def test_a_deadline_policy_reaching_a_year_without_a_notice_is_a_409(admin, clock):
    clock.set(datetime(2026, 12, 20, 10, tzinfo=CHINA_TIME))
    change = {"auto_escalate_after_hours": 4}
    problem = problem_of(admin.post(f"{API}/deadline-policy", key="policy-1", json=change), 409)
    assert problem["field"] == "auto_escalate_after_hours"
    assert "2027" in problem["detail"]
    assert put_notice(admin, 2027, NOTICE_2027).status_code == 200
    accepted = admin.post(f"{API}/deadline-policy", key="policy-2", json=change)
    assert accepted.status_code == 200, accepted.get_json()
