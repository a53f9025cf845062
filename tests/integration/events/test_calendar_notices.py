"""Holiday notices through the events service on a real broker and mongod: a county loads
2027's notice and a deadline over New Year moves; without it the service says so loudly
(its health's calendar warning, the gauges and counter, a refused deadline policy).

The services read the test's pinned clock (`clock` fixture), moved to the days that matter."""

from datetime import datetime, timedelta

import pytest
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY, generate_latest

from gridwork_common.clock import CHINA_TIME
from tests.integration.events.conftest import ADMIN, COUNTY_CENTRE
from tests.integration.events.support import (
    assert_names_field,
    events_container,
    refused,
    when,
)

pytestmark = pytest.mark.integration

# The county's 2027 notice as an administrator types it: New Year's Day falls on a Friday.
NOTICE_2027 = {
    "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
    "makeup_workdays": [],
    "reference": "2027 notice (test)",
}
NEW_YEAR_EVE = datetime(2026, 12, 31, 17, 30, tzinfo=CHINA_TIME)  # Thursday, 30 min left
DECEMBER_FIRST = datetime(2026, 12, 1, 10, 0, tzinfo=CHINA_TIME)


def china_minute(text: str) -> datetime:
    return when(text).astimezone(CHINA_TIME).replace(second=0, microsecond=0)


def sample(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def health(services) -> dict:
    with entrypoint_hook(events_container(services), "health") as hook:
        return hook()


def test_a_deadline_over_new_year_moves_once_the_2027_notice_is_loaded(desk, clock):
    admin = desk.events(ADMIN)
    unconfirmed = {"year": "2027", "computation": "deadline"}
    counted_before = sample("gridwork_calendar_unconfirmed_computations_total", **unconfirmed)
    clock.set(NEW_YEAR_EVE)
    # Category 04.01 is accepted within one working hour: 30 minutes on the 31st, 30 after.
    guessed = desk.report(category="04.01")
    assert china_minute(guessed["stage_due"]) == datetime(2027, 1, 1, 9, 0, tzinfo=CHINA_TIME)
    counted = sample("gridwork_calendar_unconfirmed_computations_total", **unconfirmed)
    assert counted >= (counted_before or 0) + 1  # the guess is counted, never silent

    loaded = admin.put_calendar_notice(2027, NOTICE_2027)
    assert loaded["year"] == 2027 and loaded["source"] == "county"
    assert loaded["holidays"] == NOTICE_2027["holidays"] and loaded["loaded_by"] == ADMIN.user_id
    clock.set(NEW_YEAR_EVE)
    counted = sample("gridwork_calendar_unconfirmed_computations_total", **unconfirmed)
    case = desk.report(category="04.01")
    # 1 to 3 January rest: the deadline moves to Monday 4 January.
    assert china_minute(case["stage_due"]) == datetime(2027, 1, 4, 9, 0, tzinfo=CHINA_TIME)
    assert sample("gridwork_calendar_unconfirmed_computations_total", **unconfirmed) == counted
    assert admin.working_days("2026-12-31", "2027-01-04") == ["2026-12-31", "2027-01-04"]


def test_notices_are_listed_one_year_loads_alone_and_a_countys_notice_wins(desk):
    admin = desk.events(ADMIN)
    settings = admin.calendar()
    listed = admin.calendar_notices()
    years = [item["year"] for item in listed["items"]]
    assert years == list(range(2004, 2027))
    assert {item["source"] for item in listed["items"]} == {"official"}
    assert listed["last_notice_year"] == 2026
    assert admin.calendar_notice(2025)["holidays"][0] == "2025-01-01"
    assert refused(admin.calendar_notice, 2027).exc_type == "NotFound"

    admin.put_calendar_notice(2027, NOTICE_2027)
    # Correcting 2026 (a county closes on Christmas Eve, say) replaces only that year.
    corrected = {"holidays": ["2026-10-01", "2026-12-24"], "makeup_workdays": []}
    assert admin.put_calendar_notice(2026, corrected)["source"] == "county"
    listed = admin.calendar_notices()
    assert [item["year"] for item in listed["items"]] == list(range(2004, 2028))
    assert listed["last_notice_year"] == 2027
    assert admin.working_days("2026-12-23", "2026-12-25") == ["2026-12-23", "2026-12-25"]
    assert admin.working_days("2026-10-07", "2026-10-08") == ["2026-10-07", "2026-10-08"]
    assert admin.calendar() == settings  # the settings are untouched by the notices


def test_a_faulty_notice_is_refused_naming_the_field(desk):
    admin = desk.events(ADMIN)
    outside = {**NOTICE_2027, "holidays": ["2027-01-01", "2026-10-01"]}
    assert_names_field(refused(admin.put_calendar_notice, 2027, outside), "holidays")
    clash = {**NOTICE_2027, "makeup_workdays": ["2027-01-02"]}
    assert_names_field(refused(admin.put_calendar_notice, 2027, clash), "makeup_workdays")
    weekday = {**NOTICE_2027, "makeup_workdays": ["2027-01-04"]}
    assert_names_field(refused(admin.put_calendar_notice, 2027, weekday), "makeup_workdays")
    assert_names_field(refused(admin.put_calendar_notice, "2027", NOTICE_2027), "year")
    forbidden = refused(desk.events(COUNTY_CENTRE).put_calendar_notice, 2027, NOTICE_2027)
    assert forbidden.exc_type == "Forbidden"
    assert refused(admin.calendar_notice, 2027).exc_type == "NotFound"


def test_health_warns_of_next_years_missing_notice_from_december_without_going_down(
    desk, services, clock
):
    report = health(services)  # 18 November: deadlines stay in 2026
    assert report["status"] == "up" and "warnings" not in report
    assert report["components"]["calendar"]["status"] == "up"
    assert sample("gridwork_calendar_notice_missing", year="2027") == 0
    assert sample("gridwork_calendar_last_notice_year") == 2026

    clock.set(DECEMBER_FIRST)
    report = health(services)
    calendar = report["components"]["calendar"]
    assert report["status"] == "up" and report["warnings"] == ["calendar"]
    assert calendar["status"] == "warning" and calendar["missing_years"] == [2027]
    assert "2027" in calendar["error"] and "/calendar/notices/2027" in calendar["error"]
    assert sample("gridwork_calendar_notice_missing", year="2027") == 1
    assert b'gridwork_calendar_notice_missing{year="2027"} 1.0' in generate_latest()

    desk.events(ADMIN).put_calendar_notice(2027, NOTICE_2027)
    report = health(services)
    assert report["components"]["calendar"]["status"] == "up"
    assert sample("gridwork_calendar_notice_missing", year="2027") == 0
    assert sample("gridwork_calendar_last_notice_year") == 2027

    # In 2027 itself, with no notice for 2028 and none needed yet: all quiet.
    clock.set(datetime(2027, 6, 1, 10, tzinfo=CHINA_TIME))
    assert health(services)["components"]["calendar"]["status"] == "up"


def test_the_calendar_timer_keeps_the_gauges_current(desk, services, clock):
    clock.set(DECEMBER_FIRST + timedelta(days=10))
    with entrypoint_hook(events_container(services), "check_calendar") as hook:
        status = hook()
    assert status["missing_years"] == [2027]
    assert sample("gridwork_calendar_notice_missing", year="2027") == 1


def test_a_deadline_policy_reaching_a_year_without_a_notice_is_refused(desk, clock):
    admin = desk.events(ADMIN)
    policy = admin.policy()
    # 20 December: the longest stage (105 working hours) and the escalation reach 2027.
    clock.set(datetime(2026, 12, 20, 10, tzinfo=CHINA_TIME))
    error = refused(admin.set_policy, {"auto_escalate_after_hours": 4})
    assert error.exc_type == "Conflict"
    assert str(error.value).startswith("auto_escalate_after_hours: ")
    assert "2027" in str(error.value)
    assert admin.policy() == policy
    # Settings counted in plain hours and metres do not depend on the calendar.
    assert admin.set_policy({"duplicate_radius_m": 50})["duplicate_radius_m"] == 50.0

    admin.put_calendar_notice(2027, NOTICE_2027)
    assert admin.set_policy({"auto_escalate_after_hours": 4})["auto_escalate_after_hours"] == 4.0


def test_a_deadline_policy_within_known_years_is_accepted(desk, clock):
    clock.set(datetime(2026, 11, 2, 10, tzinfo=CHINA_TIME))
    changed = desk.events(ADMIN).set_policy({"auto_escalate_after_hours": 16})
    assert changed["auto_escalate_after_hours"] == 16.0
