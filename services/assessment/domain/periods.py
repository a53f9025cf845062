"""Assessment periods: a day, an ISO week, a month, a quarter or a year, written the way
counties write them, each a closed range of local (China Standard Time) dates (the
written grammar, shared with the gateway's OpenAPI document, is gridwork_common.periods).

    day      2026-11-23
    week     2026-W48      (ISO 8601: weeks start on Monday; week 1 holds the first Thursday)
    month    2026-11
    quarter  2026-Q4
    year     2026
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from gridwork_common.clock import CHINA_TIME as CHINA_TIME  # re-exported: periods are China dates
from gridwork_common.errors import InvalidInput
from gridwork_common.periods import FORMATS as FORMATS  # how periods are written, shared

KINDS = ("day", "week", "month", "quarter", "year")

_PATTERNS = {
    "day": re.compile(r"(\d{4})-(\d{2})-(\d{2})"),
    "week": re.compile(r"(\d{4})-W(\d{2})"),
    "month": re.compile(r"(\d{4})-(\d{2})"),
    "quarter": re.compile(r"(\d{4})-Q([1-4])"),
    "year": re.compile(r"(\d{4})"),
}


@dataclass(frozen=True)
class Period:
    """One assessment period: its text, its kind and its first and last local dates."""

    text: str
    kind: str
    first: date
    last: date

    @classmethod
    def parse(cls, text: object, field: str = "period") -> Period:
        if isinstance(text, str):
            for kind, pattern in _PATTERNS.items():
                match = pattern.fullmatch(text)
                if match:
                    try:
                        first, last = _bounds(kind, *(int(g) for g in match.groups()))
                    except ValueError:
                        break
                    if first.year < 2000:
                        break
                    return cls(text, kind, first, last)
        raise InvalidInput(field, f"must be a day, ISO week, month, quarter or year: {FORMATS}")

    def day_texts(self) -> tuple[str, str]:
        """First and last day as "YYYY-MM-DD", the form facts are stamped with."""
        return self.first.isoformat(), self.last.isoformat()

    def months(self) -> list[Period]:
        """Every month the period touches, whole, in order."""
        months = []
        year, month = self.first.year, self.first.month
        while date(year, month, 1) <= self.last:
            months.append(Period.parse(f"{year:04d}-{month:02d}"))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months

    def whole_months(self) -> list[str]:
        """The months ("YYYY-MM") lying wholly inside the period: monthly obligations (visits
        required) count only toward periods made of whole months."""
        return [m.text for m in self.months() if self.first <= m.first and m.last <= self.last]

    @property
    def rules_month(self) -> str:
        """The month whose rule set scores this period: the one the period ends in, when
        the period is assessed."""
        return self.last.strftime("%Y-%m")


def periods_of(day: date) -> list[str]:
    """The day, ISO week, month, quarter and year a day falls in, as period texts."""
    iso = day.isocalendar()
    return [
        day.isoformat(),
        f"{iso.year}-W{iso.week:02d}",
        day.strftime("%Y-%m"),
        f"{day.year}-Q{(day.month - 1) // 3 + 1}",
        str(day.year),
    ]


def _bounds(kind: str, year: int, *rest: int) -> tuple[date, date]:
    if kind == "day":
        day = date(year, rest[0], rest[1])
        return day, day
    if kind == "week":
        first = date.fromisocalendar(year, rest[0], 1)
        return first, first + timedelta(days=6)
    if kind == "month":
        return date(year, rest[0], 1), date(year, rest[0], calendar.monthrange(year, rest[0])[1])
    if kind == "quarter":
        first_month = 3 * (rest[0] - 1) + 1
        last_month = first_month + 2
        return date(year, first_month, 1), date(
            year, last_month, calendar.monthrange(year, last_month)[1]
        )
    return date(year, 1, 1), date(year, 12, 31)
