"""Deadlines set by the real events service with its clock pinned where the working
calendar turns: into a public holiday, onto a makeup working day (调休), across a year's
end. The accept stage of 04.01 (normal) is one working hour; the county works 08:30-12:00
and 14:30-18:00 China time, so a case reported at 17:30 has 30 minutes left that day and
the rest from 08:30 on the next working day."""

from datetime import datetime, timedelta

import pytest

from gridwork_common.clock import CHINA_TIME
from tests.integration.events.support import Desk

pytestmark = pytest.mark.integration


def china(*args) -> datetime:
    return datetime(*args, tzinfo=CHINA_TIME)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("reported", "next_working_morning"),
    [
        # Wednesday 30 September, then the National Day holiday (1-7 October).
        (china(2026, 9, 30, 17, 30), china(2026, 10, 8, 8, 30)),
        # Friday 9 October, then Saturday 10 October, a makeup working day.
        (china(2026, 10, 9, 17, 30), china(2026, 10, 10, 8, 30)),
        # Saturday 14 February, a makeup working day, then the Spring Festival (15-23).
        (china(2026, 2, 14, 17, 30), china(2026, 2, 24, 8, 30)),
        # Wednesday 31 December 2025, then New Year's Day holidays (1-3 January 2026) and
        # Sunday 4 January, a makeup working day.
        (china(2025, 12, 31, 17, 30), china(2026, 1, 4, 8, 30)),
    ],
    ids=["into-a-holiday", "onto-a-makeup-day", "makeup-day-then-holiday", "across-new-year"],
)
def test_a_deadline_skips_holidays_and_counts_makeup_working_days(
    county, as_user, clock, reported, next_working_morning
):
    clock.set(reported)
    case = Desk(as_user).report()
    reported_at = when(case["reported_at"])
    # The clock ticked on a moment between pinning and the report: the deadline moves with it.
    late_by = reported_at - reported
    assert timedelta(0) <= late_by < timedelta(minutes=5)
    due, warn = when(case["stage_due"]), when(case["stage_warn_at"])
    expected_due = next_working_morning + timedelta(minutes=30) + late_by
    expected_warn = next_working_morning + timedelta(minutes=18) + late_by  # 80 % of an hour
    assert abs(due - expected_due) < timedelta(milliseconds=1), due.astimezone(CHINA_TIME)
    assert abs(warn - expected_warn) < timedelta(milliseconds=1), warn.astimezone(CHINA_TIME)
