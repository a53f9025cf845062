"""What incident events carry that is computed at sending time."""

from datetime import datetime, timedelta, timezone

from services.events.domain import incident as loop
from services.events.domain.calendar import DEFAULT_CALENDAR
from services.events.usecases.case_rendering import event_data

CHINA = timezone(timedelta(hours=8))


def closed_case(reported_at: datetime, closed_at: datetime) -> loop.Change:
    incident = loop.Incident(
        incident_id="1" * 32,
        category="04.01",
        urgency="normal",
        grid_code="530402001001001",
        description="垃圾乱堆乱放",
        location=None,
        reporter_id="worker-1",
        reported_at=reported_at,
        state="closed",
        version=9,
        owning_centre="530402001001",
        closed_at=closed_at,
    )
    return loop.Change(action="close", incident=incident, events=("closed",))


def test_a_closure_carries_its_handling_time_in_working_minutes():
    # Friday 16:00 to Monday 09:30 (23-26 October 2026): 2 h on Friday, 1 h on Monday
    change = closed_case(
        datetime(2026, 10, 23, 16, 0, tzinfo=CHINA), datetime(2026, 10, 26, 9, 30, tzinfo=CHINA)
    )
    data = event_data({}, "closed", change, DEFAULT_CALENDAR)
    assert data["handling_working_minutes"] == 180


def test_the_national_day_holiday_is_not_handling_time():
    # 30 September 17:00 to 8 October 09:00: one hour on the 30th, nothing from 1 to 7 October
    # (holiday), 30 minutes on the 8th
    change = closed_case(
        datetime(2026, 9, 30, 17, 0, tzinfo=CHINA), datetime(2026, 10, 8, 9, 0, tzinfo=CHINA)
    )
    assert event_data({}, "closed", change, DEFAULT_CALENDAR)["handling_working_minutes"] == 90


def test_a_closure_carries_the_whole_case_record_of_lateness_and_extensions():
    change = closed_case(
        datetime(2026, 10, 26, 9, 0, tzinfo=CHINA), datetime(2026, 10, 26, 10, 0, tzinfo=CHINA)
    )
    never = event_data({}, "closed", change, DEFAULT_CALENDAR)
    assert (never["ever_overdue"], never["approved_extensions"]) == (False, 0)
    late = event_data({"overdue_seq": 2}, "closed", change, DEFAULT_CALENDAR)
    assert late["ever_overdue"] is True
