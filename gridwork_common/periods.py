"""How an assessment period is written, shared by the assessment service (which reads
periods) and the gateway (whose OpenAPI document states the same grammar as a pattern):

    day      2026-11-23    (a day of the calendar, Feb 29 in leap years only)
    week     2026-W48      (ISO 8601; week 53 only in the years that have one)
    month    2026-11
    quarter  2026-Q4
    year     2026

from the year 2000 on. The patterns are anchored and free of lookarounds (ECMA 262 and
Python alike).
"""

from __future__ import annotations

FORMATS = "2026-11-23, 2026-W48, 2026-11, 2026-Q4 or 2026"

_YEAR = "[2-9][0-9]{3}"
# Leap years from 2000: divisible by 4 but not by 100, or by 400.
_LEAP_YEAR = "(?:[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)"
_MONTH = "(?:0[1-9]|1[0-2])"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_WEEK = "W(?:0[1-9]|[1-4][0-9]|5[0-3])"

DAY = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
MONTH_PATTERN = f"^{_YEAR}-{_MONTH}$"
PERIOD_PATTERN = f"^(?:{DAY}|{_YEAR}-{_WEEK}|{_YEAR}-{_MONTH}|{_YEAR}-Q[1-4]|{_YEAR})$"
PERIOD_DESCRIPTION = (
    f"A day, ISO week, month, quarter or year: {FORMATS}; from 2000 "
    "(week 53 only in a year that has one, else 422)"
)
