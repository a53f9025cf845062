"""The county's working days, for account activity: asked of the events service, which
keeps the working calendar, and kept here month by month once a month has ended, so a
closed period is always measured against the calendar it was assessed with. A period
still under way counts its working days up to today."""

from __future__ import annotations

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
    for month in period.months():
        days.update(day for day in _month(db, ask, month, today) if first <= day <= last)
    return days


def _month(db: Database, ask: AskCalendar, month: Period, today: date) -> list[str]:
    kept = db[store.WORKING_DAYS].find_one({"_id": month.text})
    if kept is not None:
        return kept["days"]
    days = ask(*month.day_texts())
    if month.last < today:  # an ended month's calendar is kept as it was first read
        try:
            db[store.WORKING_DAYS].insert_one({"_id": month.text, "days": days})
        except DuplicateKeyError:  # another replica kept it first: use theirs
            return db[store.WORKING_DAYS].find_one({"_id": month.text})["days"]
    return days
