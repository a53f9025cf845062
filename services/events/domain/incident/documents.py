"""Incidents as stored documents: plain dicts for MongoDB/JSON, in which tuples become
lists and datetimes stay datetimes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

from services.events.domain.incident.model import Extension, Incident, TimelineEntry


def to_document(incident: Incident) -> dict[str, Any]:
    return {item.name: _plain(getattr(incident, item.name)) for item in fields(Incident)}


def from_document(document: Mapping[str, Any]) -> Incident:
    """The incident a document holds. Keys the domain does not know (a store's _id, timer
    marks) are ignored; naive datetimes (pymongo's default) are read as UTC."""
    known = {item.name for item in fields(Incident)}
    values = {key: _aware(value) for key, value in document.items() if key in known}
    for key in ("media_ids", "routing_path", "escalation_path"):
        values[key] = tuple(values.get(key) or ())
    if values.get("location") is not None:
        values["location"] = tuple(values["location"])
    if values.get("pending_extension") is not None:
        values["pending_extension"] = Extension(**values["pending_extension"])
    values["timeline"] = tuple(_entry(raw) for raw in values.get("timeline") or ())
    return Incident(**values)


def _entry(raw: Mapping[str, Any]) -> TimelineEntry:
    return TimelineEntry(
        **{
            **raw,
            "actor_roles": tuple(raw.get("actor_roles") or ()),
            "media_ids": tuple(raw.get("media_ids") or ()),
            "details": dict(raw.get("details") or {}),
        }
    )


# Most values are one of these: taken as they are, before the slower checks.
_AS_IS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _AS_IS or type(value) is datetime:
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _aware(value: Any) -> Any:
    if type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    if isinstance(value, list):
        return [_aware(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _aware(item) for key, item in value.items()}
    return value
