"""The county's working days, for account activity: asked of the events service, which
keeps the working calendar, and kept here month by month once a month has ended, so a
closed period is always measured against the calendar it was assessed with. A period
still under way counts its working days up to today."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.assessment import store
from services.assessment.domain.periods import Period

AskCalendar = Callable[[str, str], list[str]]  # (first, last) -> working dates


def working_days(db: Database, ask: AskCalendar, period: Period, today: date) -> set[str]:
    first, last = period.day_texts()
    last = min(last, today.isoformat())  # the days to come are not missed yet
    days: set[str] = set()
    year, month = period.first.year, period.first.month
    while date(year, month, 1) <= period.last:
        days.update(day for day in _month(db, ask, year, month, today) if first <= day <= last)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return days


def _month(db: Database, ask: AskCalendar, year: int, month: int, today: date) -> list[str]:
    key = f"{year:04d}-{month:02d}"
    kept = db[store.WORKING_DAYS].find_one({"_id": key})
    if kept is not None:
        return kept["days"]
    end = date(year, month, calendar.monthrange(year, month)[1])
    days = ask(date(year, month, 1).isoformat(), end.isoformat())
    if end < today:  # an ended month's calendar is kept as it was first read
        try:
            db[store.WORKING_DAYS].insert_one({"_id": key, "days": days})
        except DuplicateKeyError:  # another replica kept it first: use theirs
            return db[store.WORKING_DAYS].find_one({"_id": key})["days"]
    return days
