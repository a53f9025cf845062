"""The shared clock: China time defined once, the pinned clock tests give services, and how
a service finds its clock in the nameko config."""

from datetime import UTC, date, datetime, timedelta

import pytest

from gridwork_common.clock import (
    CHINA_TIME,
    CLOCK_CONFIG_KEY,
    PinnedClock,
    china_today,
    clock_from_config,
    utc_now,
)


def test_china_time_is_defined_once():
    from services.assessment.domain import periods
    from services.events.domain import calendar
    from services.population.domain import groups

    assert periods.CHINA_TIME is groups.CHINA_TIME is calendar.CHINA_TIME is CHINA_TIME
    assert CHINA_TIME.utcoffset(None) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("instant", "today"),
    [
        (datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), date(2026, 12, 31)),  # 23:59:59
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), date(2027, 1, 1)),  # midnight in China
        (datetime(2026, 11, 30, 16, 0, tzinfo=UTC), date(2026, 12, 1)),
    ],
)
def test_today_in_china_turns_at_16_00_utc(instant, today):
    assert china_today(lambda: instant) == today


def test_a_pinned_clock_starts_where_pinned_and_runs_on():
    start = datetime(2026, 12, 31, 23, 59, tzinfo=CHINA_TIME)
    clock = PinnedClock(start)
    first, second = clock(), clock()
    assert start <= first <= second < start + timedelta(seconds=5)
    assert first.tzinfo is not None and first.utcoffset() == timedelta(0)  # always UTC


def test_a_pinned_clock_can_be_moved():
    clock = PinnedClock(datetime(2026, 11, 18, 2, 0, tzinfo=UTC))
    clock.set(datetime(2027, 1, 4, 0, 0, tzinfo=CHINA_TIME))
    assert china_today(clock) == date(2027, 1, 4)
    clock.advance(timedelta(days=-1))
    assert china_today(clock) == date(2027, 1, 3)


def test_a_pinned_clock_needs_an_aware_instant():
    with pytest.raises(ValueError, match="aware"):
        PinnedClock(datetime(2026, 11, 18, 10, 0))


def test_a_service_takes_the_clock_its_config_carries_else_the_machines():
    pinned = PinnedClock(datetime(2026, 11, 18, 2, 0, tzinfo=UTC))
    assert clock_from_config({CLOCK_CONFIG_KEY: pinned}) is pinned
    assert clock_from_config({}) is utc_now
    with pytest.raises(TypeError, match=CLOCK_CONFIG_KEY):
        clock_from_config({CLOCK_CONFIG_KEY: "2026-11-18"})
