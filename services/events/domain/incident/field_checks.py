"""Checks of a command's own fields; each refuses with InvalidCommand naming the field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from services.events.domain.incident.errors import InvalidCommand
from services.events.domain.incident.vocabulary import MAX_MEDIA_PER_ACTION, MAX_TEXT_LENGTH


def required_text(value: object, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(field, "is required")
    return optional_text(value, field, max_length)


def optional_text(value: object, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidCommand(field, "must be text")
    if len(value) > max_length:
        raise InvalidCommand(field, f"must be at most {max_length} characters")
    return value.strip()


def checked_media_ids(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidCommand("media_ids", "must be a list of media ids")
    if len(value) > MAX_MEDIA_PER_ACTION:
        raise InvalidCommand("media_ids", f"at most {MAX_MEDIA_PER_ACTION} per action")
    for media_id in value:
        if not isinstance(media_id, str) or not media_id.strip():
            raise InvalidCommand("media_ids", "each must be a non-empty media id")
    return tuple(value)


def is_number(value: object) -> bool:
    # bool is an int to Python, never a coordinate or a number of hours to a user.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_aware(moment: object, field: str) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidCommand(field, "must be a timezone-aware date and time")
