"""A county's working calendar: the moments that count toward deadlines set in working time.

Incident deadlines are counted in working minutes: the clock runs only inside the working
periods of working days, in the county's local time. A working day is a weekday that is not a
public holiday, or a weekend day made a working day by the State Council's notice (调休, a
"makeup" working day).

The holidays and makeup days come from the State Council's yearly notices (`notices`): past
years' from the chinesecalendar package, newer ones loaded by the county. A year without a
notice is counted on weekends alone, which is wrong for every festival in it: the calendar
knows which years have a notice (`years_without_notice`) so that callers can say so.

Every datetime taken must be timezone-aware and every datetime returned is in UTC. Arithmetic
is done on local wall-clock time, which is exact because the calendar's time zone is a fixed
UTC offset (China has no daylight saving time).
"""

import dataclasses
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from itertools import pairwise
from typing import Any, Self

from gridwork_common.clock import CHINA_TIME
from services.events.domain.notices import HolidayNotice
from services.events.domain.official_calendar import official_notices

# No real calendar rests for ten years in a row: that many rest days in a row means the
# calendar has no working day left, and a deadline search must stop instead of running forever.
MAX_CONSECUTIVE_REST_DAYS = 3660

_MINUTE = timedelta(minutes=1)
_CONFIG_FIELDS = ("periods", "weekend", "holidays", "makeup_workdays", "utc_offset_minutes")
_HH_MM = re.compile(r"(\d{2}):(\d{2})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Period = tuple[time, time]


@dataclass(frozen=True)
class WorkingCalendar:
    """When a county works: daily periods, weekly rest days, holidays and makeup working days.

    `periods` are local wall-clock times, each [start, end), sorted and non-overlapping, the
    same on every working day. `weekend` holds `date.weekday()` numbers (Monday is 0).
    `notices` are the State Council's yearly notices, one per year. `holidays` and
    `makeup_workdays` are the county's own days on top of them (a local festival, a day its
    offices work or close), and win over the notices; they do not stand for a notice.
    """

    periods: tuple[Period, ...] = ((time(8, 30), time(12, 0)), (time(14, 30), time(18, 0)))
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    tz: tzinfo = CHINA_TIME
    notices: tuple[HolidayNotice, ...] = ()
    # Derived from `notices` for day-by-day lookups.
    _notice_rest: frozenset[date] = dataclasses.field(init=False, repr=False, compare=False)
    _notice_work: frozenset[date] = dataclasses.field(init=False, repr=False, compare=False)
    _notice_years: frozenset[int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Callers may pass lists and sets; keep immutable, hashable values whatever came in.
        object.__setattr__(self, "periods", _checked_periods(self.periods))
        object.__setattr__(self, "weekend", _checked_weekend(self.weekend))
        holidays = _checked_dates(self.holidays, "holidays")
        makeup_workdays = _checked_dates(self.makeup_workdays, "makeup_workdays")
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "makeup_workdays", makeup_workdays)
        clashes = holidays & makeup_workdays
        if clashes:
            raise ValueError(f"makeup_workdays: {min(clashes)} is also listed as a holiday")
        _check_fixed_offset(self.tz)
        self._set_notices(self.notices)

    def _set_notices(self, notices: Iterable[HolidayNotice]) -> None:
        ordered = tuple(sorted(notices, key=lambda notice: notice.year))
        for notice in ordered:
            if not isinstance(notice, HolidayNotice):
                raise ValueError(f"notices: {notice!r} is not a holiday notice")
        years = [notice.year for notice in ordered]
        repeated = sorted({year for year in years if years.count(year) > 1})
        if repeated:
            raise ValueError(f"notices: more than one notice for {repeated[0]}")
        object.__setattr__(self, "notices", ordered)
        object.__setattr__(self, "_notice_years", frozenset(years))
        object.__setattr__(self, "_notice_rest", frozenset().union(*(n.holidays for n in ordered)))
        work = frozenset().union(*(n.makeup_workdays for n in ordered))
        object.__setattr__(self, "_notice_work", work)

    def with_notices(self, notices: Iterable[HolidayNotice]) -> Self:
        """The same calendar counted on these notices instead."""
        return replace(self, notices=tuple(notices))

    # -- which years are known ------------------------------------------------------------

    def notice_years(self) -> frozenset[int]:
        return self._notice_years

    def years_without_notice(self, first: date, last: date) -> list[int]:
        """The years from `first`'s to `last`'s that no notice covers, in order."""
        return [year for year in range(first.year, last.year + 1) if year not in self._notice_years]

    def years_without_notice_between(self, start: datetime, end: datetime) -> list[int]:
        """Like `years_without_notice`, for the local days from `start` to `end` (either way)."""
        days = sorted((self._local(start, "start").date(), self._local(end, "end").date()))
        return self.years_without_notice(*days)

    def years_without_notice_ahead(
        self, now: datetime, working_minutes: float, lead: timedelta = timedelta()
    ) -> list[int]:
        """The years without a notice that a deadline of `working_minutes` set at `now`
        reaches, or that begin within `lead` of `now` (to be told in good time)."""
        due = self.add_working_minutes(now, working_minutes)
        return self.years_without_notice_between(now, max(due, now + lead))

    # -- days and moments ---------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        # The county's own days win over the notices. Within each, a makeup day is by
        # definition a rest day turned into a working day, so it wins.
        if day in self.makeup_workdays:
            return True
        if day in self.holidays:
            return False
        if day in self._notice_work:
            return True
        return day not in self._notice_rest and day.weekday() not in self.weekend

    def is_working_time(self, moment: datetime) -> bool:
        """Whether `moment` lies inside [start, end) of a period of a working day."""
        local = self._local(moment, "moment")
        if not self.is_working_day(local.date()):
            return False
        return any(opening <= local.time() < closing for opening, closing in self.periods)

    def minutes_per_day(self) -> float:
        return self._day_length() / _MINUTE

    # -- deadline arithmetic ------------------------------------------------------------

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """The earliest moment by which `minutes` of working time have passed since `start`.

        The result is inside a working period or exactly at the end of one: a deadline that
        uses up the morning falls due at noon, not when the afternoon opens. Counting from a
        moment outside working time starts when the next working period opens.
        """
        local = self._local(start, "start")
        remaining = _duration(minutes)
        if not remaining:
            return start.astimezone(UTC)
        try:
            return self._to_utc(self._advance(local, remaining))
        except OverflowError as error:
            raise ValueError("minutes: the deadline would fall after the year 9999") from error

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in [start, end); 0 when `end` is not after `start`."""
        local_start, local_end = self._local(start, "start"), self._local(end, "end")
        if local_end <= local_start:
            return 0.0
        total = timedelta()
        first, last = local_start.date(), local_end.date()
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            if not self.is_working_day(day):
                continue
            if first < day < last:
                total += self._day_length()  # a whole day: no need to look at its periods
                continue
            for opening, closing in self._periods_on(day):
                overlap = min(closing, local_end) - max(opening, local_start)
                total += max(overlap, timedelta())
        return total / _MINUTE

    def _advance(self, local_start: datetime, remaining: timedelta) -> datetime:
        day_length = self._day_length()
        for day in self._working_days_from(local_start.date()):
            # A later day is whole, so one that cannot hold the rest is skipped in one step.
            if day > local_start.date() and remaining > day_length:
                remaining -= day_length
                continue
            for opening, closing in self._periods_on(day):
                begin = max(opening, local_start)
                if begin >= closing:
                    continue
                # `<=` makes a deadline that exactly uses up a period land on the period's end.
                if remaining <= closing - begin:
                    return begin + remaining
                remaining -= closing - begin
        raise AssertionError("unreachable: _working_days_from never ends without raising")

    def _working_days_from(self, first: date) -> Iterator[date]:
        day, rest_days_in_a_row = first, 0
        while True:
            if self.is_working_day(day):
                rest_days_in_a_row = 0
                yield day
            else:
                rest_days_in_a_row += 1
                if rest_days_in_a_row > MAX_CONSECUTIVE_REST_DAYS:
                    raise ValueError(
                        f"calendar: no working day in the {MAX_CONSECUTIVE_REST_DAYS} days "
                        f"after {day - timedelta(days=MAX_CONSECUTIVE_REST_DAYS)}"
                    )
            day += timedelta(days=1)

    def _periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        return [
            (datetime.combine(day, opening), datetime.combine(day, closing))
            for opening, closing in self.periods
        ]

    def _day_length(self) -> timedelta:
        return sum((_length(period) for period in self.periods), timedelta())

    def _local(self, moment: datetime, field: str) -> datetime:
        """`moment` as naive local wall-clock time, the frame all arithmetic is done in."""
        if not isinstance(moment, datetime):
            raise ValueError(f"{field}: must be a datetime, got {type(moment).__name__}")
        if moment.utcoffset() is None:
            raise ValueError(f"{field}: must be timezone-aware, got naive {moment.isoformat()}")
        return moment.astimezone(self.tz).replace(tzinfo=None)

    def _to_utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz).astimezone(UTC)

    # -- configuration ------------------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """A JSON-friendly dict of the county's settings (not the notices, which are kept
        per year) that `from_config(...).with_notices(self.notices)` turns back into an
        equal calendar."""
        offset = self.tz.utcoffset(None)
        assert offset is not None  # __post_init__ admits fixed offsets only
        return {
            "periods": [[_hh_mm(opening), _hh_mm(closing)] for opening, closing in self.periods],
            "weekend": sorted(self.weekend),
            "holidays": [day.isoformat() for day in sorted(self.holidays)],
            "makeup_workdays": [day.isoformat() for day in sorted(self.makeup_workdays)],
            "utc_offset_minutes": offset // _MINUTE,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """A calendar (without notices) from the dict `to_config` writes; ValueError naming
        the faulty field.

        Every field is required: a misspelt key silently replaced by a default would move
        every deadline in the county.
        """
        if not isinstance(config, Mapping):
            raise ValueError(f"config: must be a mapping, got {type(config).__name__}")
        unknown = sorted(str(key) for key in config if key not in _CONFIG_FIELDS)
        if unknown:
            raise ValueError(f"{unknown[0]}: is not a calendar setting")
        missing = [field for field in _CONFIG_FIELDS if field not in config]
        if missing:
            raise ValueError(f"{missing[0]}: is required")
        return cls(
            periods=_parse_periods(config["periods"]),
            weekend=_parse_weekend(config["weekend"]),
            holidays=_parse_dates(config["holidays"], "holidays"),
            makeup_workdays=_parse_dates(config["makeup_workdays"], "makeup_workdays"),
            tz=_parse_utc_offset(config["utc_offset_minutes"]),
        )


# -- checks on the dataclass's fields ---------------------------------------------------


def _checked_periods(periods: Iterable[Period]) -> tuple[Period, ...]:
    try:
        pairs = tuple((opening, closing) for opening, closing in periods)
    except (TypeError, ValueError) as error:
        raise ValueError("periods: must be a sequence of (start, end) pairs") from error
    if not pairs:
        raise ValueError("periods: at least one working period is required")
    for opening, closing in pairs:
        _check_period_bound(opening)
        _check_period_bound(closing)
        if opening >= closing:
            raise ValueError(
                f"periods: {_hh_mm(opening)}-{_hh_mm(closing)} must start before it ends"
            )
    for (_, earlier_end), (later_start, _) in pairwise(pairs):
        if later_start < earlier_end:
            raise ValueError(
                f"periods: must be sorted and must not overlap, but one starting at "
                f"{_hh_mm(later_start)} follows one ending at {_hh_mm(earlier_end)}"
            )
    return pairs


def _check_period_bound(bound: object) -> None:
    if not isinstance(bound, time):
        raise ValueError(f"periods: bounds must be datetime.time values, got {bound!r}")
    if bound.tzinfo is not None:
        raise ValueError("periods: bounds are local wall-clock times and must be naive")
    # Configuration speaks in HH:MM; finer bounds could not be written back exactly.
    if bound.second or bound.microsecond:
        raise ValueError(f"periods: bounds must be whole minutes, got {bound.isoformat()}")


def _checked_weekend(weekend: Iterable[int]) -> frozenset[int]:
    days = frozenset(weekend)
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise ValueError(f"weekend: {day!r} is not a weekday number 0 (Monday) to 6 (Sunday)")
    return days


def _checked_dates(days: Iterable[date], field: str) -> frozenset[date]:
    checked = frozenset(days)
    for day in checked:
        # A datetime is a date too, but one with a time of day would never match a plain day.
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"{field}: {day!r} is not a date")
    return checked


def _check_fixed_offset(tz: object) -> None:
    # A zone with daylight saving time would make local arithmetic wrong twice a year.
    if not isinstance(tz, timezone):
        raise ValueError(f"tz: must be a fixed UTC offset (datetime.timezone), got {tz!r}")
    offset = tz.utcoffset(None)
    if offset % _MINUTE:
        raise ValueError(f"tz: UTC offset must be whole minutes, got {offset}")


def _length(period: Period) -> timedelta:
    opening, closing = period
    return datetime.combine(date.min, closing) - datetime.combine(date.min, opening)


def _duration(minutes: float) -> timedelta:
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise ValueError(f"minutes: must be a number, got {type(minutes).__name__}")
    if not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"minutes: must be a finite number >= 0, got {minutes}")
    try:
        return timedelta(minutes=minutes)
    except OverflowError as error:
        raise ValueError(f"minutes: {minutes} is too large") from error


def _hh_mm(moment: time) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


# -- parsing configuration --------------------------------------------------------------


def _parse_list(value: object, field: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{field}: must be a list, got {type(value).__name__}")
    return list(value)


def _parse_periods(value: object) -> tuple[Period, ...]:
    periods = []
    for item in _parse_list(value, "periods"):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValueError(f'periods: each period must be ["HH:MM", "HH:MM"], got {item!r}')
        periods.append((_parse_hh_mm(item[0]), _parse_hh_mm(item[1])))
    return tuple(periods)


def _parse_hh_mm(text: object) -> time:
    match = _HH_MM.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"periods: {text!r} is not a time written HH:MM")
    return time(int(match[1]), int(match[2]))


def _parse_weekend(value: object) -> frozenset[int]:
    days = _parse_list(value, "weekend")
    _reject_repeats(days, "weekend")
    return _checked_weekend(days)


def _parse_dates(value: object, field: str) -> frozenset[date]:
    days = []
    for text in _parse_list(value, field):
        if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
            raise ValueError(f"{field}: {text!r} is not a date written YYYY-MM-DD")
        try:
            days.append(date.fromisoformat(text))
        except ValueError as error:
            raise ValueError(f"{field}: {text!r} is not a valid date") from error
    _reject_repeats(days, field)
    return frozenset(days)


def _reject_repeats(values: list[Any], field: str) -> None:
    # A repeated entry is harmless in a set, but it would not survive the round trip and is
    # more likely a typo for another day.
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{field}: {value} is listed twice")
        seen.add(value)


def _parse_utc_offset(value: object) -> timezone:
    if isinstance(value, bool) or not isinstance(value, int) or not -1439 <= value <= 1439:
        raise ValueError(
            f"utc_offset_minutes: must be a whole number of minutes within a day, got {value!r}"
        )
    return timezone(timedelta(minutes=value))


# -- the shipped default ----------------------------------------------------------------


# Standard government office hours, 8:30-12:00 and 14:30-18:00, Monday to Friday. Hours vary by
# county and by season (many switch to a later summer afternoon), so they are configurable too.
DEFAULT_CALENDAR = WorkingCalendar(
    periods=((time(8, 30), time(12, 0)), (time(14, 30), time(18, 0))),
    weekend=frozenset({5, 6}),
    tz=CHINA_TIME,
    # The State Council's notices as far as the shipped chinesecalendar package knows them;
    # each county loads newer years' notices through its calendar configuration.
    notices=official_notices(),
)
