"""Past years' official holiday notices, from the maintained `chinesecalendar` package.

This is the only module that imports the package: the rest of the code sees `HolidayNotice`s.
The package carries every State Council notice since 2004 and raises NotImplementedError for a
year it does not know (it never guesses), so a year missing here is a year nobody has loaded:
upgrading the package brings new years; until then a county loads the new notice itself.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import chinese_calendar

from services.events.domain.notices import OFFICIAL, HolidayNotice, notice_year_of

PACKAGE = f"chinesecalendar {chinese_calendar.__version__}"
_NEW_YEARS_DAY = chinese_calendar.Holiday.new_years_day.value


@cache
def official_notices() -> tuple[HolidayNotice, ...]:
    """One notice per year the package knows, oldest first."""
    years = [year for year in _candidate_years() if _package_knows(year)]
    holidays: dict[int, set[date]] = {year: set() for year in years}
    makeup_workdays: dict[int, set[date]] = {year: set() for year in years}
    sources = ((chinese_calendar.holidays, holidays), (chinese_calendar.workdays, makeup_workdays))
    for dates, into in sources:
        for day, festival in dates.items():
            year = notice_year_of(day, festival == _NEW_YEARS_DAY)
            # A December day of a next year the package does not know stays with its own year.
            into[year if year in into else day.year].add(day)
    return tuple(
        HolidayNotice(
            year,
            frozenset(holidays[year]),
            frozenset(makeup_workdays[year]),
            source=OFFICIAL,
            reference=PACKAGE,
        )
        for year in years
    )


def official_years() -> frozenset[int]:
    return frozenset(notice.year for notice in official_notices())


def _candidate_years() -> range:
    known = {day.year for day in chinese_calendar.holidays}
    return range(min(known), max(known) + 1)


def _package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True
