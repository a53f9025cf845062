"""Field types of the gateway's request models whose JSON Schema format pydantic would
otherwise read more loosely than the document states: pydantic takes "0" or
"1700000000" for a date or a date-time (seconds since 1970), the document's `date` and
`date-time` formats (RFC 3339) do not, and the gateway refuses what its document calls
invalid. Each type parses the text itself, so it also holds in strict validation."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Field
from pydantic_core import PydanticCustomError

_FULL_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_RFC3339_DATE = re.compile(_FULL_DATE)
_RFC3339_DATE_TIME = re.compile(
    _FULL_DATE + r"[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_FROM_2000 = re.compile(r"[2-9][0-9]{3}-.*", re.DOTALL)


def _parsed(pattern: re.Pattern, parse, example: str, kind: str):
    # Refused as pydantic's own `date_parsing` / `datetime_parsing` errors, so whoever
    # words errors by their type (the command centre's forms) knows a date was wrong.
    def check(value):
        if not isinstance(value, str):
            return value  # the type's own validation refuses it
        if not pattern.fullmatch(value):
            raise PydanticCustomError(kind, "must be written as {example}", {"example": example})
        try:
            return parse(value.upper())
        except ValueError:
            raise PydanticCustomError(
                kind, "{value} is not a day of the calendar", {"value": value}
            ) from None

    return check


def _from_2000(value):
    if isinstance(value, str) and not _FROM_2000.fullmatch(value):
        raise ValueError("must be in the year 2000 or later")
    return value


# A calendar date, written 2026-11-23.
IsoDate = Annotated[
    date, BeforeValidator(_parsed(_RFC3339_DATE, date.fromisoformat, "2026-11-23", "date_parsing"))
]
# An instant with its offset, written 2026-11-23T09:30:00+08:00 (or ...Z).
IsoDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(
        _parsed(
            _RFC3339_DATE_TIME,
            datetime.fromisoformat,
            "2026-11-23T09:30:00+08:00",
            "datetime_parsing",
        )
    ),
]
# An IsoDateTime in the year 2000 or later (as written, with its own offset).
IsoDateTimeFrom2000 = Annotated[
    IsoDateTime,
    BeforeValidator(_from_2000),
    Field(json_schema_extra={"pattern": "^[2-9][0-9]{3}-"}),
]
