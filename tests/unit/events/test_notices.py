"""Holiday notices: past years from the chinesecalendar package, a county's notice loaded on
top, years without one flagged (never guessed), and a notice's validation."""

from datetime import date, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from gridwork_common.health import DOWN, UP, WARNING, advisory, service_report
from services.events import calendar_watch
from services.events.domain.calendar import CHINA_TIME, DEFAULT_CALENDAR, WorkingCalendar
from services.events.domain.catalogue import default_catalogue_document, parse_catalogue
from services.events.domain.notices import (
    COUNTY,
    OFFICIAL,
    HolidayNotice,
    merged,
    parse_notice,
)
from services.events.domain.official_calendar import official_notices, official_years
from services.events.rules import CountyRules

# A 2027 notice as a county would type it (New Year's Day on Friday 1 January 2027).
NOTICE_2027 = HolidayNotice(
    2027, frozenset({date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)}), frozenset()
)


def beijing(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHINA_TIME)


def with_2027() -> WorkingCalendar:
    return DEFAULT_CALENDAR.with_notices(merged(official_notices(), [NOTICE_2027]))


# -- past years from the package ----------------------------------------------------------


def test_the_package_gives_every_year_from_2004_to_2026_and_nothing_after():
    assert official_years() == frozenset(range(2004, 2027))
    assert DEFAULT_CALENDAR.notice_years() == frozenset(range(2004, 2027))
    assert all(notice.source == OFFICIAL for notice in official_notices())


def test_past_years_holidays_count_not_only_2026():
    # National Day 2025 ran 1 to 8 October, with makeup Sundays 28 September and 11 October;
    # the hand-typed 2026 table made these ordinary working days and weekends.
    assert not DEFAULT_CALENDAR.is_working_day(date(2025, 10, 1))
    assert not DEFAULT_CALENDAR.is_working_day(date(2025, 10, 8))
    assert DEFAULT_CALENDAR.is_working_day(date(2025, 9, 28))
    assert DEFAULT_CALENDAR.is_working_day(date(2025, 10, 11))
    # Spring Festival 2024: 10 to 17 February, makeup Sunday 4 and Sunday 18 February.
    assert not DEFAULT_CALENDAR.is_working_day(date(2024, 2, 16))
    assert DEFAULT_CALENDAR.is_working_day(date(2024, 2, 18))


def test_a_new_year_break_starting_in_december_belongs_to_next_years_notice():
    # The 2019 notice: rest from 30 December 2018 to 1 January 2019, work on 29 December.
    notice_2019 = next(n for n in official_notices() if n.year == 2019)
    assert {date(2018, 12, 30), date(2018, 12, 31), date(2019, 1, 1)} <= notice_2019.holidays
    assert date(2018, 12, 29) in notice_2019.makeup_workdays
    assert DEFAULT_CALENDAR.is_working_day(date(2018, 12, 29))
    assert not DEFAULT_CALENDAR.is_working_day(date(2018, 12, 31))


# -- a year without a notice is flagged -----------------------------------------------------


def test_a_year_without_a_notice_is_named():
    assert DEFAULT_CALENDAR.years_without_notice(date(2026, 1, 1), date(2026, 12, 31)) == []
    assert DEFAULT_CALENDAR.years_without_notice(date(2026, 12, 1), date(2028, 1, 5)) == [
        2027,
        2028,
    ]
    assert DEFAULT_CALENDAR.years_without_notice(date(2003, 6, 1), date(2004, 1, 1)) == [2003]
    end_of_2026 = beijing(date(2026, 12, 31), 17)
    assert DEFAULT_CALENDAR.years_without_notice_between(end_of_2026, end_of_2026) == []
    # 1 January 2027 00:30 in China is still 31 December in UTC: local days count.
    just_after = beijing(date(2027, 1, 1), 0, 30)
    assert DEFAULT_CALENDAR.years_without_notice_between(just_after, end_of_2026) == [2027]


@pytest.mark.parametrize(
    ("now", "minutes", "lead", "missing"),
    [
        pytest.param(beijing(date(2026, 11, 18), 10), 113 * 60, timedelta(), [], id="november"),
        pytest.param(
            beijing(date(2026, 11, 18), 10), 113 * 60, timedelta(days=31), [], id="lead not yet"
        ),
        pytest.param(
            beijing(date(2026, 12, 1), 10), 60, timedelta(days=31), [2027], id="from december"
        ),
        pytest.param(
            beijing(date(2026, 12, 20), 10), 113 * 60, timedelta(), [2027], id="deadline reaches"
        ),
        pytest.param(beijing(date(2027, 3, 1), 10), 60, timedelta(), [2027], id="in the year"),
    ],
)
def test_years_without_notice_ahead(now, minutes, lead, missing):
    assert DEFAULT_CALENDAR.years_without_notice_ahead(now, minutes, lead) == missing


def test_a_loaded_notice_closes_the_gap_and_moves_a_deadline_over_new_year():
    new_year_eve = beijing(date(2026, 12, 31), 17, 30)  # Thursday; half an hour left
    # Without the 2027 notice, Friday 1 January counts as a working day: the guess.
    assert DEFAULT_CALENDAR.add_working_minutes(new_year_eve, 60) == beijing(date(2027, 1, 1), 9)
    calendar = with_2027()
    assert calendar.years_without_notice(date(2026, 12, 1), date(2027, 12, 31)) == []
    assert calendar.add_working_minutes(new_year_eve, 60) == beijing(date(2027, 1, 4), 9)


def test_a_countys_notice_wins_over_the_package_for_the_same_year():
    corrected = HolidayNotice(2026, frozenset({date(2026, 12, 24)}), frozenset(), source=COUNTY)
    calendar = DEFAULT_CALENDAR.with_notices(merged(official_notices(), [corrected]))
    assert not calendar.is_working_day(date(2026, 12, 24))
    assert calendar.is_working_day(date(2026, 10, 8))  # the package's 2026 dates are replaced
    assert [n.source for n in calendar.notices if n.year == 2026] == [COUNTY]
    assert calendar.notice_years() == DEFAULT_CALENDAR.notice_years()


def test_the_countys_own_days_win_over_the_notices():
    calendar = WorkingCalendar(
        holidays=frozenset({date(2026, 10, 10)}),  # a makeup Saturday in the notice
        makeup_workdays=frozenset({date(2026, 10, 2)}),  # a National Day holiday
        notices=official_notices(),
    )
    assert not calendar.is_working_day(date(2026, 10, 10))
    assert calendar.is_working_day(date(2026, 10, 2))


def test_two_notices_for_one_year_are_refused():
    with pytest.raises(ValueError, match=r"^notices: more than one notice for 2027"):
        WorkingCalendar(notices=(NOTICE_2027, NOTICE_2027))


def test_settings_round_trip_without_the_notices():
    config = DEFAULT_CALENDAR.to_config()
    assert config["holidays"] == [] and config["makeup_workdays"] == []
    restored = WorkingCalendar.from_config(config).with_notices(DEFAULT_CALENDAR.notices)
    assert restored == DEFAULT_CALENDAR


# -- computations that reach a year without a notice are counted ---------------------------


def test_the_rules_report_every_deadline_and_count_that_reaches_an_unknown_year():
    reported = []
    catalogue = parse_catalogue(default_catalogue_document(), 1)
    rules = CountyRules(
        catalogue, {}, DEFAULT_CALENDAR, lambda years, kind: reported.append((list(years), kind))
    )
    rules.add_working_minutes(beijing(date(2026, 12, 30), 10), 60)
    rules.working_minutes_between(beijing(date(2026, 12, 1), 10), beijing(date(2026, 12, 31), 10))
    assert reported == []
    rules.add_working_minutes(beijing(date(2026, 12, 31), 17, 30), 60)
    rules.working_minutes_between(beijing(date(2026, 12, 30), 10), beijing(date(2027, 1, 4), 10))
    assert reported == [([2027], "deadline"), ([2027], "working_time")]
    known = CountyRules(catalogue, {}, with_2027(), lambda years, kind: reported.append(years))
    known.add_working_minutes(beijing(date(2026, 12, 31), 17, 30), 60)
    assert len(reported) == 2


def test_the_counter_and_gauges_an_alert_watches():
    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels)

    before = sample(
        "gridwork_calendar_unconfirmed_computations_total", year="2031", computation="deadline"
    )
    calendar_watch.count_unconfirmed([2031], "deadline")
    after = sample(
        "gridwork_calendar_unconfirmed_computations_total", year="2031", computation="deadline"
    )
    assert after == (before or 0) + 1

    calendar_watch.publish({2030, 2031}, [2031], 2030)
    assert sample("gridwork_calendar_notice_missing", year="2031") == 1
    assert sample("gridwork_calendar_notice_missing", year="2030") == 0
    assert sample("gridwork_calendar_last_notice_year") == 2030
    calendar_watch.publish({2031, 2032}, [], 2031)  # loaded meanwhile
    assert sample("gridwork_calendar_notice_missing", year="2031") == 0
    assert sample("gridwork_calendar_notice_missing", year="2030") is None


# -- a warning does not take a service down ------------------------------------------------


def test_a_warning_component_is_listed_but_leaves_the_service_up():
    report = service_report("events", {"mongo": {"status": UP}, "calendar": {"status": WARNING}})
    assert report["status"] == UP and report["warnings"] == ["calendar"]
    down = service_report("events", {"mongo": {"status": DOWN}, "calendar": {"status": WARNING}})
    assert down["status"] == DOWN
    assert "warnings" not in service_report("events", {"mongo": {"status": UP}})


def test_an_advisory_check_that_fails_is_a_warning_not_an_outage():
    def broken():
        raise RuntimeError("no settings")

    assert advisory(broken) == {"status": WARNING, "error": "RuntimeError: no settings"}
    assert advisory(lambda: {"status": UP}) == {"status": UP}


# -- validating a county's notice ----------------------------------------------------------

VALID = {"holidays": ["2027-01-01", "2027-01-02"], "makeup_workdays": ["2027-02-20"]}


def test_a_valid_notice_parses():
    reference = "国办发明电〔2026〕12号"  # noqa: RUF001 (the notice's own brackets)
    notice = parse_notice(2027, {**VALID, "reference": reference})
    assert notice.holidays == {date(2027, 1, 1), date(2027, 1, 2)}
    assert notice.makeup_workdays == {date(2027, 2, 20)}  # a Saturday
    assert notice.source == COUNTY
    assert notice.to_document()["holidays"] == ["2027-01-01", "2027-01-02"]


def test_a_new_year_break_may_start_in_the_last_days_of_december():
    notice = parse_notice(2019, {"holidays": ["2018-12-30"], "makeup_workdays": ["2018-12-29"]})
    assert notice.holidays == {date(2018, 12, 30)}


@pytest.mark.parametrize(
    ("year", "body", "field"),
    [
        (2027, {**VALID, "holidays": []}, "holidays"),
        (2027, {**VALID, "holidays": "2027-01-01"}, "holidays"),
        (2027, {**VALID, "holidays": ["2027-02-30"]}, "holidays"),
        (2027, {**VALID, "holidays": ["20270101"]}, "holidays"),
        (2027, {**VALID, "holidays": ["2027-W01-1"]}, "holidays"),
        (2027, {**VALID, "holidays": [20270101]}, "holidays"),
        (2027, {**VALID, "holidays": ["2027-01-01", "2027-01-01"]}, "holidays"),
        (2027, {**VALID, "holidays": ["2026-10-01"]}, "holidays"),
        (2027, {**VALID, "holidays": ["2026-12-20"]}, "holidays"),
        (2027, {**VALID, "holidays": ["2028-01-01"]}, "holidays"),
        (2027, {**VALID, "makeup_workdays": ["2027-01-01"]}, "makeup_workdays"),
        (2027, {**VALID, "makeup_workdays": ["2027-02-22"]}, "makeup_workdays"),  # a Monday
        (2027, {**VALID, "makeup_workdays": ["2026-02-21"]}, "makeup_workdays"),
        (2027, {"holidays": VALID["holidays"]}, "makeup_workdays"),
        (2027, {**VALID, "holiday": ["2027-01-01"]}, "holiday"),
        (2027, {**VALID, "reference": "x" * 201}, "reference"),
        (2027, {**VALID, "reference": 12}, "reference"),
        (999, VALID, "year"),
        ("2027", VALID, "year"),
        (True, VALID, "year"),
        (2027, ["2027-01-01"], "notice"),
    ],
)
def test_a_faulty_notice_names_the_field(year, body, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        parse_notice(year, body)
