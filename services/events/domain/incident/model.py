"""The case and who acts on it: Actor, Incident with its timeline and extension request,
the Change a command makes, and the Rules the service supplies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.events.domain.incident.vocabulary import TERMINAL_STATES


class Rules(Protocol):
    """What the service supplies from its catalogue, departments and working calendar."""

    def stage_hours(self, category: str, urgency: str, stage: str) -> float: ...

    def on_site_allowed(self, category: str) -> bool: ...

    def department_territory(self, department_code: str) -> str | None: ...

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime: ...

    def working_minutes_between(self, start: datetime, end: datetime) -> float: ...


@dataclass(frozen=True)
class Actor:
    user_id: str
    roles: tuple[str, ...]
    scope: str | None = None  # territory code: a centre's code for its operators
    department: str | None = None  # a department handler's department code

    def has_role(self, *names: str) -> bool:
        return any(name in self.roles for name in names)


@dataclass(frozen=True)
class TimelineEntry:
    action: str
    from_state: str | None  # None for the report that created the case
    to_state: str
    actor_id: str
    actor_roles: tuple[str, ...]
    at: datetime
    comment: str = ""
    media_ids: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)  # the command's own fields


@dataclass(frozen=True)
class Extension:
    hours: float  # working hours asked for
    reason: str
    requested_by: str
    requested_at: datetime


@dataclass(frozen=True, kw_only=True)
class Incident:
    incident_id: str
    category: str
    urgency: str
    grid_code: str
    description: str
    location: tuple[float, float] | None = None  # (longitude, latitude)
    media_ids: tuple[str, ...] = ()
    reporter_id: str
    reported_at: datetime
    resolved_on_spot: bool = False

    state: str
    version: int = 0  # == len(timeline) as stored (a step reads the case without it)

    # Who owns it: a centre's territory code, always an ancestor of the grid. routing_path
    # lists every owner in order (it ends with owning_centre); escalation_path lists the
    # centres the case climbed through by escalation, empty if it never was escalated.
    owning_centre: str
    routing_path: tuple[str, ...] = ()
    escalation_path: tuple[str, ...] = ()
    escalation_count: int = 0
    # Set from dispatch until the case is closed, and kept after closing for the record;
    # cleared when the department returns the case or the case moves to another centre.
    department: str | None = None

    # The current stage and its deadline; stage_seq lets a timer warn once per stage.
    stage: str | None = None
    stage_seq: int = 0
    stage_started_at: datetime | None = None
    stage_due: datetime | None = None
    stage_warn_at: datetime | None = None

    pending_extension: Extension | None = None
    approved_extensions: int = 0
    resume_state: str | None = None  # the state a suspended case resumes to
    suspended_at: datetime | None = None
    return_count: int = 0
    rework_count: int = 0
    supervision_count: int = 0

    result: str | None = None  # the department's latest feedback
    rejection_reason: str | None = None
    duplicate_of: str | None = None
    satisfaction: int | None = None
    closed_at: datetime | None = None

    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def escalated(self) -> bool:
        return self.escalation_count > 0

    @property
    def supervised(self) -> bool:
        return self.supervision_count > 0

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class Change:
    """The case after a command, and the topics (incident.<name>) to publish about it."""

    action: str
    incident: Incident
    events: tuple[str, ...] = ()
