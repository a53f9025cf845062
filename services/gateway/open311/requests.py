"""What a GeoReport `GET requests` asks and what the public may read. Pure: no I/O.

The query (GeoReport v2): `service_request_id` (comma-separated, overrides the rest), or
`service_code`, `status` (`open`, `closed`) and `start_date`/`end_date` (W3C date-times)
within one window of at most 90 days; the most recent 90 days by default. At most 1,000
requests, newest first.

A public reader sees a request without its citizen: no contact fields ever, and the exact
address and point only where the county publishes them (`OPEN311_EXACT_ADDRESS`); else
no address and the point rounded to about 100 m."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from gridwork_common.clock import CHINA_TIME

# The W3C date-times (and dates) `start_date` and `end_date` take, as the document states
# them: a day of the calendar (Feb 29 in leap years only) from 2000 to 2999, and a time
# to the minute, second or microsecond with an optional offset (without one, China
# time). Anchored and free of lookarounds (ECMA 262 and Python alike).
_YEAR = "2[0-9]{3}"
_LEAP_YEAR = "(?:2[0-9](?:0[48]|[2468][048]|[13579][26])|2000)"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_HOUR, _MINUTE = "(?:[01][0-9]|2[0-3])", "[0-5][0-9]"
_TIME = f"T{_HOUR}:{_MINUTE}(?::{_MINUTE}(?:\\.[0-9]{{1,6}})?)?(?:Z|[+-]{_HOUR}:{_MINUTE})?"
DATE_TIME_PATTERN = f"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)(?:{_TIME})?$"
STATUS_PATTERN = "^(?:(?:open|closed)(?:,(?:open|closed))*)?$"

WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
STATUSES = ("open", "closed")
FINISHED_STATES = ("closed", "evaluated", "rejected")
APPROXIMATE_DIGITS = 3  # 0.001° is about 100 m (latitude; less in longitude)


class InvalidQuery(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class RequestQuery:
    ids: tuple[str, ...] = ()  # when given, nothing else applies
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def parse_query(raw: Mapping[str, str | None], now: datetime) -> RequestQuery:
    ids = _listed(raw.get("service_request_id"))
    if ids:
        if len(ids) > MAX_REQUESTS:
            raise InvalidQuery("service_request_id", f"at most {MAX_REQUESTS} ids")
        return RequestQuery(ids=ids)
    statuses = _listed(raw.get("status"))
    for status in statuses:
        if status not in STATUSES:
            raise InvalidQuery("status", f"{status!r} is not one of {', '.join(STATUSES)}")
    start, end = window(
        parse_datetime(raw.get("start_date"), "start_date"),
        parse_datetime(raw.get("end_date"), "end_date"),
        now,
    )
    return RequestQuery(
        service_codes=_listed(raw.get("service_code")), statuses=statuses, start=start, end=end
    )


def window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The requested window: both ends given (at most 90 days apart), or one end and 90
    days from it, or the most recent 90 days."""
    if start is None and end is None:
        return now - WINDOW, now
    if start is None:
        return end - WINDOW, end
    if end is None:
        return start, start + WINDOW
    if end < start:
        raise InvalidQuery("end_date", "must not be before start_date")
    if end - start > WINDOW:
        raise InvalidQuery("end_date", "the window may not span more than 90 days")
    return start, end


def parse_datetime(text: str | None, field: str) -> datetime | None:
    """A W3C date-time (`2026-11-18T10:00:00+08:00`, `…Z`) or date; without an offset,
    China time."""
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQuery(
            field, "must be a W3C date-time like 2026-11-18T10:00:00+08:00"
        ) from None
    if len(text) == 10:  # a date alone: from its start
        moment = datetime.combine(moment.date(), time())
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA_TIME)


def _listed(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def public_status(state: str) -> str:
    return "closed" if state in FINISHED_STATES else "open"


def matches(query: RequestQuery, incident: Mapping) -> bool:
    return not query.statuses or public_status(incident["state"]) in query.statuses


def public_request(
    row: Mapping, incident: Mapping, service_name: str | None, exact_address: bool
) -> dict:
    """A service request as anyone may read it (GeoReport v2's fields, in its order)."""
    lon, lat = incident.get("location") or [None, None]
    if not exact_address:
        lon, lat = _approximate(lon), _approximate(lat)
    return {
        "service_request_id": row["_id"],
        "status": public_status(incident["state"]),
        "status_notes": incident["state"],
        "service_name": service_name,
        "service_code": row["service_code"],
        # The citizen's own words: the case's description also carries the address.
        "description": row.get("description", incident.get("description")),
        "agency_responsible": incident.get("department") or incident.get("owning_centre"),
        "service_notice": None,
        "requested_datetime": incident["reported_at"],
        # The latest stage start is the latest change a citizen cares about.
        "updated_datetime": incident.get("closed_at")
        or incident.get("stage_started_at")
        or incident["reported_at"],
        "expected_datetime": incident.get("stage_due"),
        "address": row.get("address") if exact_address else None,
        "lat": lat,
        "long": lon,
        "media_url": row.get("media_url"),
    }


def _approximate(coordinate: float | None) -> float | None:
    return None if coordinate is None else round(coordinate, APPROXIMATE_DIGITS)
