"""Opening a case: report() checks the report and who makes it, and starts the case in
`reported`, or closes it at once when a grid worker resolved it on the spot (自行处置)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gridwork_common.territory import is_ascii_digits
from services.events.domain.incident.commands import Report
from services.events.domain.incident.errors import InvalidCommand, NotPermitted
from services.events.domain.incident.field_checks import (
    check_aware,
    checked_media_ids,
    is_number,
    required_text,
)
from services.events.domain.incident.model import Actor, Change, Incident, Rules
from services.events.domain.incident.permissions import report_refusal
from services.events.domain.incident.steps import Step, finish, record, start_stage
from services.events.domain.incident.territory import GRID_LENGTH, first_centre
from services.events.domain.incident.vocabulary import CLOSED, REPORTED, URGENCIES


def report(command: Report, actor: Actor, now: datetime, rules: Rules) -> Change:
    """Open a case in `reported`, or straight in `closed` when resolved on the spot."""
    check_aware(now, "now")
    if not isinstance(command, Report):
        raise TypeError(f"report() takes a Report, not {type(command).__name__}")
    _check_report(command)
    why_not = report_refusal(command, actor)
    if why_not:
        raise NotPermitted(why_not)
    blank = _new_incident(command, actor, now)
    if command.resolved_on_spot:
        _check_on_spot(blank, rules)
    opened = record(
        blank,
        Step(REPORTED, ("reported",), start_stage(blank, REPORTED, now, rules)),
        "report",
        actor,
        now,
    )
    if not command.resolved_on_spot:
        return Change("report", opened, ("reported",))
    # 自行处置: the grid worker's evidence stands in for dispatch, handling and verification.
    closed = record(
        opened,
        Step(CLOSED, ("closed",), finish(opened, now), details={"resolved_on_spot": True}),
        "close",
        actor,
        now,
    )
    return Change("report", closed, ("reported", "closed"))


def _new_incident(command: Report, actor: Actor, now: datetime) -> Incident:
    """The case as it is before its first timeline entry (version 0)."""
    centre = first_centre(command.grid_code)
    return Incident(
        incident_id=command.incident_id,
        category=command.category,
        urgency=command.urgency,
        grid_code=command.grid_code,
        description=command.description.strip(),
        location=_location(command.location),
        media_ids=checked_media_ids(command.media_ids),
        reporter_id=command.reporter_id or actor.user_id,
        reported_at=now,
        resolved_on_spot=command.resolved_on_spot,
        state=REPORTED,
        owning_centre=centre,
        routing_path=(centre,),
    )


def _check_report(command: Report) -> None:
    required_text(command.incident_id, "incident_id", max_length=200)
    required_text(command.category, "category", max_length=200)
    if command.urgency not in URGENCIES:
        raise InvalidCommand("urgency", f"must be one of {', '.join(URGENCIES)}")
    grid = command.grid_code
    if not (isinstance(grid, str) and is_ascii_digits(grid) and len(grid) == GRID_LENGTH):
        raise InvalidCommand("grid_code", f"must be a grid code of {GRID_LENGTH} digits")
    required_text(command.description, "description")
    if command.reporter_id is not None:
        required_text(command.reporter_id, "reporter_id", max_length=200)
    if not isinstance(command.resolved_on_spot, bool):
        raise InvalidCommand("resolved_on_spot", "must be true or false")


def _check_on_spot(incident: Incident, rules: Rules) -> None:
    if not rules.on_site_allowed(incident.category):
        raise InvalidCommand(
            "resolved_on_spot",
            f"category {incident.category} may not be resolved on the spot; report it instead",
        )
    if not incident.media_ids:
        raise InvalidCommand("media_ids", "resolving on the spot needs at least one photo or video")


def _location(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or len(value) != 2
        or not all(is_number(part) for part in value)
    ):
        raise InvalidCommand("location", "must be a (longitude, latitude) pair of numbers")
    longitude, latitude = float(value[0]), float(value[1])
    if not (-180 <= longitude <= 180 and -90 <= latitude <= 90):
        raise InvalidCommand("location", "longitude must be within ±180 and latitude ±90")
    return (longitude, latitude)
