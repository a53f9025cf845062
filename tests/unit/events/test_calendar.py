import json
import math
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.events.domain.calendar import (
    CHINA_TIME,
    DEFAULT_CALENDAR,
    WorkingCalendar,
)

# The shipped office hours with no holidays: plain weeks, so examples only show the clock.
OFFICE = WorkingCalendar()

# 2026-03-02 is a Monday; the week of 2 to 8 March 2026 has no holiday.
MONDAY = date(2026, 3, 2)
FRIDAY = date(2026, 3, 6)
SUNDAY = date(2026, 3, 8)
NEXT_MONDAY = date(2026, 3, 9)


def beijing(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=CHINA_TIME)


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_example_dates_fall_on_the_weekdays_the_tests_assume():
    assert MONDAY.weekday() == 0 and FRIDAY.weekday() == 4
    assert SUNDAY.weekday() == 6 and NEXT_MONDAY.weekday() == 0


# -- working days and working time ------------------------------------------------------


def test_weekdays_work_and_weekends_rest():
    assert OFFICE.is_working_day(MONDAY)
    assert OFFICE.is_working_day(FRIDAY)
    assert not OFFICE.is_working_day(SUNDAY)
    assert not OFFICE.is_working_day(date(2026, 3, 7))


def test_holiday_rests_even_on_a_weekday_and_makeup_day_works_even_on_a_weekend():
    calendar = WorkingCalendar(holidays=frozenset({MONDAY}), makeup_workdays=frozenset({SUNDAY}))
    assert not calendar.is_working_day(MONDAY)
    assert calendar.is_working_day(SUNDAY)


def test_custom_weekend():
    # Some offices rest on Sunday only.
    calendar = WorkingCalendar(weekend=frozenset({6}))
    assert calendar.is_working_day(date(2026, 3, 7))
    assert not calendar.is_working_day(SUNDAY)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (beijing(MONDAY, 8, 30), True),  # periods include their start ...
        (beijing(MONDAY, 8, 29, 59), False),
        (beijing(MONDAY, 11, 59, 59), True),
        (beijing(MONDAY, 12, 0), False),  # ... and exclude their end
        (beijing(MONDAY, 13, 0), False),
        (beijing(MONDAY, 14, 30), True),
        (beijing(MONDAY, 18, 0), False),
        (beijing(SUNDAY, 10, 0), False),
        (utc(MONDAY, 1, 0), True),  # 09:00 in Beijing
        (utc(MONDAY, 4, 0), False),  # 12:00 in Beijing
        (utc(date(2026, 3, 1), 23, 0), False),  # Monday 07:00 in Beijing
    ],
)
def test_is_working_time(moment, expected):
    assert OFFICE.is_working_time(moment) is expected


def test_minutes_per_day():
    assert OFFICE.minutes_per_day() == 420
    assert WorkingCalendar(periods=((time(9), time(9, 45)),)).minutes_per_day() == 45


# -- add_working_minutes: examples ------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        pytest.param(beijing(MONDAY, 9), 60, beijing(MONDAY, 10), id="within one period"),
        pytest.param(beijing(MONDAY, 10), 150, beijing(MONDAY, 15), id="crossing lunch"),
        pytest.param(beijing(MONDAY, 10), 120, beijing(MONDAY, 12), id="uses up the morning"),
        pytest.param(beijing(MONDAY, 15), 180, beijing(MONDAY, 18), id="uses up the day"),
        pytest.param(beijing(MONDAY, 10), 121, beijing(MONDAY, 14, 31), id="just past noon"),
        pytest.param(beijing(MONDAY, 17), 120, beijing(MONDAY + timedelta(1), 9, 30), id="night"),
        pytest.param(beijing(FRIDAY, 17), 120, beijing(NEXT_MONDAY, 9, 30), id="weekend"),
        pytest.param(beijing(MONDAY, 9), 5 * 420, beijing(FRIDAY + timedelta(3), 9), id="week"),
        pytest.param(beijing(MONDAY, 7), 30, beijing(MONDAY, 9), id="before opening"),
        pytest.param(beijing(MONDAY, 12), 30, beijing(MONDAY, 15), id="at noon"),
        pytest.param(beijing(MONDAY, 13), 30, beijing(MONDAY, 15), id="at lunch"),
        pytest.param(beijing(MONDAY, 19), 1, beijing(MONDAY + timedelta(1), 8, 31), id="evening"),
        pytest.param(beijing(SUNDAY, 10), 60, beijing(NEXT_MONDAY, 9, 30), id="on sunday"),
        pytest.param(beijing(MONDAY, 9), 0.5, beijing(MONDAY, 9, 0, 30), id="half a minute"),
    ],
)
def test_add_working_minutes(start, minutes, due):
    assert OFFICE.add_working_minutes(start, minutes) == due


def test_deadline_exactly_at_a_period_end_is_that_end_not_the_next_opening():
    due = OFFICE.add_working_minutes(beijing(MONDAY, 10), 120)
    assert due == beijing(MONDAY, 12)
    assert due != beijing(MONDAY, 14, 30)
    # Counting on from that end starts when the afternoon opens.
    assert OFFICE.add_working_minutes(due, 1) == beijing(MONDAY, 14, 31)


def test_touching_periods_count_as_one_stretch():
    calendar = WorkingCalendar(periods=((time(8), time(12)), (time(12), time(13))))
    assert calendar.add_working_minutes(beijing(MONDAY, 8), 240) == beijing(MONDAY, 12)
    assert calendar.add_working_minutes(beijing(MONDAY, 8), 241) == beijing(MONDAY, 12, 1)
    assert calendar.is_working_time(beijing(MONDAY, 12))


def test_utc_in_utc_out():
    due = OFFICE.add_working_minutes(utc(MONDAY, 1), 60)  # 09:00 in Beijing
    assert due == utc(MONDAY, 2)
    assert due.utcoffset() == timedelta(0)
    assert due.tzinfo is UTC


def test_result_is_in_utc_whatever_the_start_zone():
    new_york = timezone(timedelta(hours=-5))
    start = datetime(2026, 3, 1, 20, 0, tzinfo=new_york)  # Monday 09:00 in Beijing
    due = OFFICE.add_working_minutes(start, 60)
    assert due.tzinfo is UTC
    assert due == beijing(MONDAY, 10)


def test_zero_minutes_returns_the_start_in_utc_even_outside_working_time():
    start = beijing(SUNDAY, 3, 17)
    due = OFFICE.add_working_minutes(start, 0)
    assert due == start
    assert due.tzinfo is UTC


@pytest.mark.parametrize("minutes", [-1, -0.001, math.nan, math.inf, True, "60", None])
def test_add_rejects_minutes_that_are_not_a_non_negative_finite_number(minutes):
    with pytest.raises(ValueError, match=r"^minutes: "):
        OFFICE.add_working_minutes(beijing(MONDAY, 9), minutes)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match=r"^start: .*timezone-aware"):
        OFFICE.add_working_minutes(datetime(2026, 3, 2, 9), 60)
    with pytest.raises(ValueError, match=r"^start: "):
        OFFICE.add_working_minutes(datetime(2026, 3, 2, 9), 0)
    with pytest.raises(ValueError, match=r"^end: "):
        OFFICE.working_minutes_between(beijing(MONDAY, 9), datetime(2026, 3, 2, 10))
    with pytest.raises(ValueError, match=r"^moment: "):
        OFFICE.is_working_time(datetime(2026, 3, 2, 10))


def test_a_calendar_without_working_days_raises_instead_of_looping_forever():
    never = WorkingCalendar(weekend=frozenset(range(7)))
    with pytest.raises(ValueError, match=r"^calendar: no working day"):
        never.add_working_minutes(beijing(MONDAY, 9), 1)


def test_a_calendar_whose_working_days_run_out_raises():
    only_one_sunday = WorkingCalendar(
        weekend=frozenset(range(7)), makeup_workdays=frozenset({SUNDAY})
    )
    assert only_one_sunday.add_working_minutes(beijing(MONDAY, 9), 420) == beijing(SUNDAY, 18)
    with pytest.raises(ValueError, match=r"^calendar: "):
        only_one_sunday.add_working_minutes(beijing(MONDAY, 9), 421)


def test_long_deadline_over_years_of_holidays_skips_whole_days():
    # Ten years of holidays on the 1st and 15th of each month, and a 600 working hour deadline.
    holidays = frozenset(
        date(year, month, day)
        for year in range(2026, 2036)
        for month in range(1, 13)
        for day in (1, 15)
    )
    calendar = WorkingCalendar(holidays=holidays)
    start = beijing(MONDAY, 9)
    due = calendar.add_working_minutes(start, 600 * 60)
    assert calendar.working_minutes_between(start, due) == 600 * 60
    assert calendar.is_working_day(due.astimezone(CHINA_TIME).date())


def test_deadline_beyond_the_year_9999_is_a_value_error():
    with pytest.raises(ValueError, match=r"^minutes: "):
        OFFICE.add_working_minutes(beijing(MONDAY, 9), 1e15)


# -- the 2026 holidays: National Day week, makeup days ----------------------------------


def test_national_day_week_is_skipped():
    # Wednesday 30 September 17:00: one hour left that day, then 1 to 7 October are holidays.
    start = beijing(date(2026, 9, 30), 17)
    assert DEFAULT_CALENDAR.add_working_minutes(start, 120) == beijing(date(2026, 10, 8), 9, 30)


def test_makeup_saturday_after_national_day_counts():
    # Thursday 8 and Friday 9 October are whole working days, and so is Saturday 10 October.
    start = beijing(date(2026, 9, 30), 17)
    due = DEFAULT_CALENDAR.add_working_minutes(start, 60 + 2 * 420 + 60)
    assert due == beijing(date(2026, 10, 10), 9, 30)
    friday_evening = beijing(date(2026, 10, 9), 17)
    due = DEFAULT_CALENDAR.add_working_minutes(friday_evening, 120)
    assert due == beijing(date(2026, 10, 10), 9, 30)


def test_makeup_sunday_before_national_day_counts():
    saturday = beijing(date(2026, 9, 19), 10)
    assert DEFAULT_CALENDAR.add_working_minutes(saturday, 30) == beijing(date(2026, 9, 20), 9)


def test_start_on_a_holiday_counts_from_the_next_working_morning():
    start = beijing(date(2026, 10, 3), 10)
    assert DEFAULT_CALENDAR.add_working_minutes(start, 60) == beijing(date(2026, 10, 8), 9, 30)


def test_spring_festival_break():
    # Friday 13 February 17:00; Saturday 14 February is a makeup day, then nine days of rest.
    start = beijing(date(2026, 2, 13), 17)
    assert DEFAULT_CALENDAR.add_working_minutes(start, 60 + 420) == beijing(date(2026, 2, 14), 18)
    due = DEFAULT_CALENDAR.add_working_minutes(start, 60 + 420 + 1)
    assert due == beijing(date(2026, 2, 24), 8, 31)


# -- working_minutes_between: examples --------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        pytest.param(beijing(MONDAY, 9), beijing(MONDAY, 10), 60, id="within one period"),
        pytest.param(beijing(MONDAY, 11), beijing(MONDAY, 15), 90, id="across lunch"),
        pytest.param(beijing(MONDAY, 12, 30), beijing(MONDAY, 14), 0, id="inside lunch"),
        pytest.param(beijing(MONDAY, 0), beijing(MONDAY + timedelta(1), 0), 420, id="whole day"),
        pytest.param(beijing(FRIDAY, 17), beijing(NEXT_MONDAY, 9), 90, id="over a weekend"),
        pytest.param(beijing(MONDAY, 9), beijing(NEXT_MONDAY, 9), 5 * 420, id="a week"),
        pytest.param(beijing(MONDAY, 10), beijing(MONDAY, 9), 0, id="end before start"),
        pytest.param(beijing(MONDAY, 10), beijing(MONDAY, 10), 0, id="empty"),
        pytest.param(beijing(MONDAY, 9), beijing(MONDAY, 9, 0, 30), 0.5, id="half a minute"),
        pytest.param(utc(MONDAY, 0), utc(MONDAY, 2), 90, id="utc"),
    ],
)
def test_working_minutes_between(start, end, minutes):
    assert OFFICE.working_minutes_between(start, end) == minutes


def test_working_minutes_over_national_day_week():
    start = beijing(date(2026, 9, 30), 0)
    end = beijing(date(2026, 10, 11), 0)
    # 30 September, 8, 9 and 10 (makeup Saturday) October.
    assert DEFAULT_CALENDAR.working_minutes_between(start, end) == 4 * 420


# -- the shipped default ----------------------------------------------------------------

# Written out from the notice independently of the module's table: (first, last) rest days.
NOTICE_2026_BREAKS = [
    (date(2026, 1, 1), date(2026, 1, 3)),
    (date(2026, 2, 15), date(2026, 2, 23)),
    (date(2026, 4, 4), date(2026, 4, 6)),
    (date(2026, 5, 1), date(2026, 5, 5)),
    (date(2026, 6, 19), date(2026, 6, 21)),
    (date(2026, 9, 25), date(2026, 9, 27)),
    (date(2026, 10, 1), date(2026, 10, 7)),
]
NOTICE_2026_MAKEUP = {
    date(2026, 1, 4),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 5, 9),
    date(2026, 9, 20),
    date(2026, 10, 10),
}


def test_default_calendar_holds_the_2026_notice():
    expected_holidays = {
        first + timedelta(days=n)
        for first, last in NOTICE_2026_BREAKS
        for n in range((last - first).days + 1)
    }
    (notice,) = [notice for notice in DEFAULT_CALENDAR.notices if notice.year == 2026]
    assert notice.holidays == expected_holidays
    assert notice.makeup_workdays == NOTICE_2026_MAKEUP
    # The notices are not the county's own days.
    assert DEFAULT_CALENDAR.holidays == frozenset()
    assert DEFAULT_CALENDAR.makeup_workdays == frozenset()


def test_default_calendar_makeup_days_are_all_weekend_days():
    makeup_days = [day for notice in DEFAULT_CALENDAR.notices for day in notice.makeup_workdays]
    assert makeup_days and all(day.weekday() in (5, 6) for day in makeup_days)


def test_default_calendar_has_248_working_days_in_2026():
    # 365 days - 104 weekend days - 13 statutory holidays (since the 2025 revision) = 248.
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    assert sum(DEFAULT_CALENDAR.is_working_day(day) for day in days) == 248


def test_default_calendar_office_hours_and_zone():
    assert DEFAULT_CALENDAR.periods == ((time(8, 30), time(12)), (time(14, 30), time(18)))
    assert DEFAULT_CALENDAR.weekend == {5, 6}
    assert DEFAULT_CALENDAR.tz.utcoffset(None) == timedelta(hours=8)


# -- configuration ----------------------------------------------------------------------


def test_to_config_is_json_friendly():
    calendar = WorkingCalendar(
        holidays=frozenset({date(2026, 10, 2), date(2026, 10, 1)}),
        makeup_workdays=frozenset({date(2026, 10, 10)}),
    )
    assert calendar.to_config() == {
        "periods": [["08:30", "12:00"], ["14:30", "18:00"]],
        "weekend": [5, 6],
        "holidays": ["2026-10-01", "2026-10-02"],
        "makeup_workdays": ["2026-10-10"],
        "utc_offset_minutes": 480,
    }


def test_default_calendar_round_trips_through_json():
    # The settings travel as config; the notices are kept per year and added back.
    config = json.loads(json.dumps(DEFAULT_CALENDAR.to_config()))
    restored = WorkingCalendar.from_config(config).with_notices(DEFAULT_CALENDAR.notices)
    assert restored == DEFAULT_CALENDAR
    assert WorkingCalendar.from_config(config).to_config() == config


def test_constructor_accepts_lists_and_keeps_immutable_values():
    calendar = WorkingCalendar(
        periods=[[time(9), time(17)]], weekend=[6], holidays=[MONDAY], makeup_workdays=set()
    )
    assert calendar.periods == ((time(9), time(17)),)
    assert calendar.weekend == frozenset({6})
    assert hash(calendar) == hash(WorkingCalendar(((time(9), time(17)),), frozenset({6}), {MONDAY}))


VALID = DEFAULT_CALENDAR.to_config()


def with_setting(**changes):
    return {**VALID, **changes}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (with_setting(periods=[["14:30", "18:00"], ["08:30", "12:00"]]), "periods"),
        (with_setting(periods=[["08:30", "12:00"], ["11:30", "18:00"]]), "periods"),
        (with_setting(periods=[["12:00", "08:30"]]), "periods"),
        (with_setting(periods=[["08:30", "08:30"]]), "periods"),
        (with_setting(periods=[]), "periods"),
        (with_setting(periods=[["8:30", "12:00"]]), "periods"),
        (with_setting(periods=[["24:00", "12:00"]]), "periods"),
        (with_setting(periods=[["08:30"]]), "periods"),
        (with_setting(periods="08:30-12:00"), "periods"),
        (with_setting(weekend=[7]), "weekend"),
        (with_setting(weekend=[-1]), "weekend"),
        (with_setting(weekend=["6"]), "weekend"),
        (with_setting(weekend=[True]), "weekend"),
        (with_setting(weekend=[6, 6]), "weekend"),
        (with_setting(weekend=6), "weekend"),
        (with_setting(holidays=["2026-02-30"]), "holidays"),
        (with_setting(holidays=["20261001"]), "holidays"),
        (with_setting(holidays=["2026-10-01", "2026-10-01"]), "holidays"),
        (with_setting(holidays=[20261001]), "holidays"),
        (
            with_setting(holidays=["2026-10-01"], makeup_workdays=["2026-10-01"]),
            "makeup_workdays",
        ),
        (with_setting(makeup_workdays=["10/10/2026"]), "makeup_workdays"),
        (with_setting(utc_offset_minutes=1440), "utc_offset_minutes"),
        (with_setting(utc_offset_minutes="480"), "utc_offset_minutes"),
        (with_setting(utc_offset_minutes=8.0), "utc_offset_minutes"),
        (with_setting(timezone="Asia/Shanghai"), "timezone"),
        ({k: v for k, v in VALID.items() if k != "holidays"}, "holidays"),
    ],
)
def test_from_config_names_the_faulty_field(config, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        WorkingCalendar.from_config(config)


class _ShanghaiLike(tzinfo):
    """A zone whose offset depends on the date, as any zone with daylight saving time does."""

    def utcoffset(self, moment):
        return None if moment is None else timedelta(hours=8)

    def dst(self, moment):
        return timedelta(0)


@pytest.mark.parametrize(
    ("settings_", "field"),
    [
        ({"periods": ((time(14, 30), time(18)), (time(8, 30), time(12)))}, "periods"),
        ({"periods": ((time(8, 30), time(12)), (time(11), time(18)))}, "periods"),
        ({"periods": ((time(12), time(8, 30)),)}, "periods"),
        ({"periods": ()}, "periods"),
        ({"periods": ((time(8, 30, 15), time(12)),)}, "periods"),
        ({"periods": ((time(8, 30, tzinfo=UTC), time(12)),)}, "periods"),
        ({"periods": (("08:30", "12:00"),)}, "periods"),
        ({"periods": (time(8, 30),)}, "periods"),
        ({"weekend": frozenset({7})}, "weekend"),
        ({"weekend": frozenset({"6"})}, "weekend"),
        ({"holidays": frozenset({datetime(2026, 10, 1, tzinfo=UTC)})}, "holidays"),
        ({"holidays": frozenset({"2026-10-01"})}, "holidays"),
        ({"makeup_workdays": frozenset({"2026-10-10"})}, "makeup_workdays"),
        (
            {"holidays": frozenset({SUNDAY}), "makeup_workdays": frozenset({SUNDAY})},
            "makeup_workdays",
        ),
        ({"tz": _ShanghaiLike()}, "tz"),
        ({"tz": timezone(timedelta(hours=8, seconds=30))}, "tz"),
    ],
)
def test_constructor_names_the_faulty_field(settings_, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        WorkingCalendar(**settings_)


# -- properties -------------------------------------------------------------------------

ZONES = [
    UTC,
    CHINA_TIME,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=45)),
]


def clock(minute_of_day: int) -> time:
    return time(minute_of_day // 60, minute_of_day % 60)


@st.composite
def calendars(draw):
    count = draw(st.integers(1, 4))
    marks = draw(
        st.lists(st.integers(0, 1439), min_size=2 * count, max_size=2 * count, unique=True)
    )
    marks.sort()
    # Sometimes a period opens the moment the previous one closes.
    for index in range(2, 2 * count, 2):
        if draw(st.booleans()):
            marks[index] = marks[index - 1]
    periods = tuple((clock(marks[i]), clock(marks[i + 1])) for i in range(0, 2 * count, 2))
    around_2026 = st.dates(date(2025, 12, 1), date(2027, 6, 30))
    holidays = draw(st.frozensets(around_2026, max_size=30))
    makeup_workdays = draw(st.frozensets(around_2026, max_size=6)) - holidays
    return WorkingCalendar(
        periods=periods,
        # At most six rest days a week, so working days never run out.
        weekend=draw(st.frozensets(st.integers(0, 6), max_size=6)),
        holidays=holidays,
        makeup_workdays=makeup_workdays,
        tz=timezone(timedelta(minutes=draw(st.integers(-720, 840)))),
    )


moments = st.builds(
    lambda moment, zone: moment.replace(second=0, microsecond=0, tzinfo=zone),
    st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31, 23, 59)),
    st.sampled_from(ZONES),
)
minutes = st.integers(0, 1500)

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


def at_a_period_end_of_a_working_day(calendar, moment):
    local = moment.astimezone(calendar.tz)
    return calendar.is_working_day(local.date()) and any(
        local.timetz().replace(tzinfo=None) == closing for _, closing in calendar.periods
    )


@PROPERTY_SETTINGS
@given(calendars(), moments, minutes)
def test_inverse_counting_back_gives_the_minutes_added(calendar, start, m):
    assert calendar.working_minutes_between(start, calendar.add_working_minutes(start, m)) == m


@PROPERTY_SETTINGS
@given(calendars(), moments, st.integers(1, 1500))
def test_deadline_is_the_earliest_such_moment(calendar, start, m):
    due = calendar.add_working_minutes(start, m)
    just_before = due - timedelta(microseconds=1)  # a calendar instant, not a measured time
    assert calendar.working_minutes_between(start, just_before) < m


@PROPERTY_SETTINGS
@given(calendars(), moments, st.integers(1, 1500))
def test_deadline_never_lands_outside_working_time(calendar, start, m):
    due = calendar.add_working_minutes(start, m)
    assert due > start
    assert calendar.is_working_time(due) or at_a_period_end_of_a_working_day(calendar, due)


@PROPERTY_SETTINGS
@given(calendars(), moments, minutes, minutes)
def test_more_minutes_never_fall_due_earlier(calendar, start, a, b):
    low, high = sorted((a, b))
    assert calendar.add_working_minutes(start, low) <= calendar.add_working_minutes(start, high)


@PROPERTY_SETTINGS
@given(calendars(), moments, st.floats(0, 1500), st.floats(0, 1500))
def test_more_fractional_minutes_never_fall_due_earlier(calendar, start, a, b):
    low, high = sorted((a, b))
    assert calendar.add_working_minutes(start, low) <= calendar.add_working_minutes(start, high)


@PROPERTY_SETTINGS
@given(calendars(), moments, st.floats(0, 1500))
def test_fractional_minutes_count_back_to_within_a_microsecond(calendar, start, m):
    due = calendar.add_working_minutes(start, m)
    assert abs(calendar.working_minutes_between(start, due) - m) <= 1e-6


@PROPERTY_SETTINGS
@given(calendars(), moments, minutes, minutes)
def test_adding_in_two_steps_is_adding_the_sum(calendar, start, a, b):
    in_two_steps = calendar.add_working_minutes(calendar.add_working_minutes(start, a), b)
    assert in_two_steps == calendar.add_working_minutes(start, a + b)


@PROPERTY_SETTINGS
@given(calendars(), moments, minutes, st.sampled_from(ZONES))
def test_start_zone_does_not_matter_and_result_is_utc(calendar, start, m, zone):
    due = calendar.add_working_minutes(start, m)
    assert due.tzinfo is UTC
    assert calendar.add_working_minutes(start.astimezone(zone), m) == due


@PROPERTY_SETTINGS
@given(calendars(), moments, moments, moments)
def test_working_minutes_add_up_over_a_split_point(calendar, a, b, c):
    start, split, end = sorted((a, b, c))
    whole = calendar.working_minutes_between(start, end)
    parts = calendar.working_minutes_between(start, split) + calendar.working_minutes_between(
        split, end
    )
    assert whole == parts


@PROPERTY_SETTINGS
@given(calendars(), moments, moments)
def test_working_minutes_are_zero_backwards_and_never_exceed_elapsed_time(calendar, a, b):
    start, end = sorted((a, b))
    assert calendar.working_minutes_between(end, start) == 0
    assert 0 <= calendar.working_minutes_between(start, end) <= (end - start) / timedelta(minutes=1)


@settings(max_examples=40, deadline=None)
@given(calendars(), moments, st.integers(0, 2 * 1440))
def test_working_minutes_agree_with_counting_minute_by_minute(calendar, start, span):
    # Whole-minute starts and bounds: a minute is working time throughout or not at all.
    counted = sum(calendar.is_working_time(start + timedelta(minutes=n)) for n in range(span))
    end = start + timedelta(minutes=span)
    assert calendar.working_minutes_between(start, end) == counted


@settings(max_examples=40, deadline=None)
@given(calendars(), moments, st.integers(1, 120))
def test_deadline_agrees_with_walking_minute_by_minute(calendar, start, m):
    moment, counted = start, 0
    while counted < m:
        counted += calendar.is_working_time(moment)
        moment += timedelta(minutes=1)
        assume(moment - start < timedelta(days=8))  # sparse calendars would walk too long
    assert calendar.add_working_minutes(start, m) == moment


@PROPERTY_SETTINGS
@given(calendars())
def test_config_round_trips_through_json(calendar):
    config = json.loads(json.dumps(calendar.to_config()))
    assert WorkingCalendar.from_config(config) == calendar
    assert WorkingCalendar.from_config(config).to_config() == config
