"""The incident desk's input, checked and parsed: idempotency keys and fingerprints, a
report's location, media and patrol, a command's fields, a search's queue filters and
times. Bad input raises InvalidInput naming the field."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from gridwork_common.errors import InvalidInput
from services.events.domain import incident as loop


def patrol_id(value) -> str | None:
    """A patrol's id as the phone made it (a UUID), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidInput("patrol_id", "must be a patrol's UUID")


def command(command_type: type, expected_version, fields: Mapping):
    if not isinstance(fields, Mapping):
        raise InvalidInput("fields", "must be an object")
    allowed = {f.name for f in dataclasses.fields(command_type)} - {"expected_version"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], f"is not a field of {command_type.action}")
    values = dict(fields)
    if "new_due" in values and values["new_due"] is not None:
        values["new_due"] = aware_time(values["new_due"], "new_due")
    if "media_ids" in values:
        values["media_ids"] = tuple(strings(values["media_ids"], "media_ids"))
    try:
        return command_type(expected_version=expected_version, **values)
    except TypeError as exc:  # a required field missing
        missing = next(
            (
                f.name
                for f in dataclasses.fields(command_type)
                if f.name not in values
                and f.name != "expected_version"
                and f.default is dataclasses.MISSING
            ),
            "fields",
        )
        raise InvalidInput(missing, f"is required ({exc})") from None


def queue_filters(filters: dict) -> dict:
    """The filters a command-centre queue adds to a search (popped from `filters`): open
    cases only, urgency, escalated or supervised ones, the centre owning them, the
    department holding them. They narrow the caller's scope, never widen it."""
    query: dict = {}
    if "urgency" in filters:
        urgency = filters.pop("urgency")
        if urgency not in loop.URGENCIES:
            raise InvalidInput("urgency", f"must be one of {', '.join(loop.URGENCIES)}")
        query["urgency"] = urgency
    if "open" in filters:
        query["open"] = _flag(filters.pop("open"), "open")
    for name, counter in (("escalated", "escalation_count"), ("supervised", "supervision_count")):
        if name in filters:
            query[counter] = {"$gt": 0} if _flag(filters.pop(name), name) else 0
    for name in ("owning_centre", "department"):
        if name in filters:
            value = filters.pop(name)
            if not isinstance(value, str) or not value:
                raise InvalidInput(name, "must be a code")
            query[name] = value
    return query


def _flag(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, "must be true or false")
    return value


def fingerprint(raw: Mapping) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_key(value) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 100:
        raise InvalidInput("idempotency_key", "is required: 1 to 100 characters")
    return value


def location(value) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and value.get("type") == "Point":
        value = value.get("coordinates")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise InvalidInput("location", "must be [longitude, latitude]")
    lon, lat = value
    for name, number, bound in (("longitude", lon, 180), ("latitude", lat, 90)):
        if isinstance(number, bool) or not isinstance(number, int | float) or abs(number) > bound:
            raise InvalidInput("location", f"{name} must be a number from -{bound} to {bound}")
    return float(lon), float(lat)


def strings(value, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(field, "must be a list of strings")
    return list(value)


def aware_time(value, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidInput(field, "must be an ISO 8601 time with a UTC offset") from None
    if moment.tzinfo is None:
        raise InvalidInput(field, "must be an ISO 8601 time with a UTC offset")
    return moment.astimezone(UTC)
