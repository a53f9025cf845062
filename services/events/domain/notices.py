"""Holiday notices: the State Council's yearly list of public holidays and makeup working days.

Every year the State Council General Office publishes which days the country rests for its
festivals and which weekend days are worked instead (调休). A county's working calendar takes
the dates from these notices: past years' from the `chinesecalendar` package (see
`official_calendar`), newer ones as the county loads them. A year without a notice cannot be
counted right, and the calendar says so instead of guessing (see `WorkingCalendar`).

A notice for a year may name days in the December before it: the New Year break sometimes
starts on 30 or 31 December (the 2019 notice rests from 30 December 2018 and works on the 29th).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

OFFICIAL = "official"  # shipped with Gridwork, from the chinesecalendar package
COUNTY = "county"  # loaded by the county through its calendar configuration

MIN_YEAR, MAX_YEAR = 1000, 9999
MAX_REFERENCE_LENGTH = 200
_NOTICE_FIELDS = ("holidays", "makeup_workdays", "reference")
_WEEKEND = (5, 6)  # Saturday, Sunday
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# The earliest day of the year before that a notice may name: its New Year break.
_NEW_YEAR_BREAK_FROM = (12, 25)


@dataclass(frozen=True)
class HolidayNotice:
    """One year's notice: its rest days (every day of each break, weekends included) and the
    weekend days worked to make up for them. `reference` is the notice's number or title."""

    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date] = frozenset()
    source: str = COUNTY
    reference: str = ""

    def __post_init__(self) -> None:
        _check_year(self.year)
        holidays = _checked_days(self.holidays, self.year, "holidays")
        makeup_workdays = _checked_days(self.makeup_workdays, self.year, "makeup_workdays")
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "makeup_workdays", makeup_workdays)
        if not holidays:
            # Every year has New Year's Day at least: an empty list is a notice not typed in.
            raise ValueError("holidays: a notice names at least one holiday")
        clashes = holidays & makeup_workdays
        if clashes:
            raise ValueError(f"makeup_workdays: {min(clashes)} is also listed as a holiday")
        weekdays = sorted(day for day in makeup_workdays if day.weekday() not in _WEEKEND)
        if weekdays:
            # A makeup day is a Saturday or Sunday worked; a weekday "makeup" is a typo.
            raise ValueError(f"makeup_workdays: {weekdays[0]} is not a Saturday or Sunday")
        if self.source not in (OFFICIAL, COUNTY):
            raise ValueError(f"source: must be {OFFICIAL!r} or {COUNTY!r}")
        if not isinstance(self.reference, str) or len(self.reference) > MAX_REFERENCE_LENGTH:
            raise ValueError(f"reference: must be text of at most {MAX_REFERENCE_LENGTH} letters")

    def to_document(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "source": self.source,
            "reference": self.reference,
            "holidays": [day.isoformat() for day in sorted(self.holidays)],
            "makeup_workdays": [day.isoformat() for day in sorted(self.makeup_workdays)],
        }


def parse_notice(year: object, body: Mapping[str, Any], source: str = COUNTY) -> HolidayNotice:
    """A notice from what a county sends (or a stored document); ValueError naming the field.

    `holidays` and `makeup_workdays` are required (an empty makeup list is written out), so a
    misspelt key is never taken for "no makeup days".
    """
    if isinstance(year, bool) or not isinstance(year, int):
        raise ValueError(f"year: must be a whole year, got {year!r}")
    _check_year(year)
    if not isinstance(body, Mapping):
        raise ValueError(f"notice: must be an object, got {type(body).__name__}")
    unknown = sorted(str(key) for key in body if key not in _NOTICE_FIELDS)
    if unknown:
        known = ", ".join(_NOTICE_FIELDS)
        raise ValueError(f"{unknown[0]}: is not part of a holiday notice ({known})")
    for field in ("holidays", "makeup_workdays"):
        if field not in body:
            raise ValueError(f"{field}: is required (an empty list if there are none)")
    reference = body.get("reference", "")
    return HolidayNotice(
        year=year,
        holidays=_parse_days(body["holidays"], "holidays"),
        makeup_workdays=_parse_days(body["makeup_workdays"], "makeup_workdays"),
        source=source,
        reference="" if reference is None else reference,
    )


def notice_year_of(day: date, new_year_break: bool) -> int:
    """The notice a day belongs to: a New Year break day in December is in next year's."""
    return day.year + 1 if new_year_break and day.month == 12 else day.year


def merged(official: Iterable[HolidayNotice], county: Iterable[HolidayNotice]) -> tuple:
    """One notice per year, the county's where it loaded one (it may correct the package)."""
    by_year = {notice.year: notice for notice in official}
    by_year.update({notice.year: notice for notice in county})
    return tuple(by_year[year] for year in sorted(by_year))


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"year: must be from {MIN_YEAR} to {MAX_YEAR}, got {year}")


def _checked_days(days: Iterable[date], year: int, field: str) -> frozenset[date]:
    checked = frozenset(days)
    first = date(year - 1, *_NEW_YEAR_BREAK_FROM) if year > MIN_YEAR else date(year, 1, 1)
    for day in checked:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"{field}: {day!r} is not a date")
        if not first <= day <= date(year, 12, 31):
            raise ValueError(
                f"{field}: {day} is not in {year} (only its New Year break may start in the "
                f"last days of December before)"
            )
    return checked


def _parse_days(value: object, field: str) -> list[date]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{field}: must be a list of dates YYYY-MM-DD, got {type(value).__name__}")
    days: list[date] = []
    for text in value:
        if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
            raise ValueError(f"{field}: {text!r} is not a date written YYYY-MM-DD")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{field}: {text!r} is not a valid date YYYY-MM-DD") from None
        if day in days:
            raise ValueError(f"{field}: {text} is listed twice")
        days.append(day)
    return days
