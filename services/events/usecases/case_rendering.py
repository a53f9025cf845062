"""A case rendered as plain JSON values: the data of the events announcing its changes,
times as ISO 8601 in UTC, its timeline."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime

from gridwork_common import roles
from services.events import topics
from services.events.domain import incident as loop
from services.events.domain.calendar import WorkingCalendar


def event_data(
    document: Mapping, name: str, change: loop.Change, calendar: WorkingCalendar
) -> dict:
    incident = change.incident
    entry = incident.timeline[-1] if incident.timeline else None
    data = {
        "incident_id": incident.incident_id,
        "event": name,
        "state": incident.state,
        "version": incident.version,
        "category": incident.category,
        "urgency": incident.urgency,
        "grid_code": incident.grid_code,
        "owning_centre": incident.owning_centre,
        "department": incident.department,
        "reporter_id": incident.reporter_id,
        "reported_at": as_json(incident.reported_at),
        "stage": incident.stage,
        "stage_due": as_json(incident.stage_due),
        "rework_count": incident.rework_count,
        "escalation_path": list(incident.escalation_path),
        "supervised": incident.supervised,
        # the person who acted: none for deadline notices and the timer's automatic steps
        "actor_id": entry.actor_id
        if entry and name not in topics.DEADLINES and roles.SYSTEM not in entry.actor_roles
        else None,
        "at": as_json(entry.at if entry else incident.reported_at),
    }
    if name in ("reported", "dispatched"):
        data.update(
            description=incident.description,
            media_ids=list(incident.media_ids),
            location=list(incident.location) if incident.location else None,
        )
    if name == "reported":
        data["patrol_id"] = document.get("patrol_id")
    if name in ("handled", "verified", "reworked", "closed"):
        data["media_ids"] = list(entry.media_ids) if entry else []
    if name == "closed":
        data["closed_at"] = as_json(incident.closed_at)
        data["resolved_on_spot"] = incident.resolved_on_spot
        # The whole case's record, whenever it happened: the assessment counts a closure
        # on time only if no stage ever ran over, and sets deferred cases apart.
        data["ever_overdue"] = document.get("overdue_seq", 0) > 0
        data["approved_extensions"] = incident.approved_extensions
        # Measured here, where the county's calendar is kept; the assessment service
        # averages it and takes its 90th percentile.
        data["handling_working_minutes"] = round(
            calendar.working_minutes_between(incident.reported_at, incident.closed_at)
        )
    if name == "evaluated":
        data["satisfaction"] = incident.satisfaction
    if name == "extended" and entry is not None:
        data["hours"] = entry.details.get("hours")
    return data


# Most values are one of these: taken as they are, before the slower checks.
_AS_IS = frozenset({str, int, float, bool, type(None)})


def as_json(value):
    if type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def plain_json(value):
    if type(value) in _AS_IS:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return as_json(value)


def render_timeline(entries) -> list[dict]:
    return [as_json(dict(entry)) for entry in entries]
