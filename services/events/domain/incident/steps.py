"""What an action does to a case (a Step), how it is recorded on the timeline, and the
fields of the stage a case enters, its deadline counted in working time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.events.domain.incident.model import Actor, Incident, Rules, TimelineEntry
from services.events.domain.incident.vocabulary import STAGE_OF_STATE, WARN_FRACTION


@dataclass(frozen=True)
class Step:
    """What an action does: the state it leads to, the fields it changes, what to record."""

    to_state: str
    events: tuple[str, ...] = ()
    changes: Mapping[str, Any] = field(default_factory=dict)
    comment: str = ""
    media_ids: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


def record(incident: Incident, step: Step, action: str, actor: Actor, now: datetime) -> Incident:
    """The case after `step`: its changes made, one version on, one timeline entry more."""
    entry = TimelineEntry(
        action=action,
        # A version-0 incident is being created: its first entry comes from nowhere.
        from_state=incident.state if incident.version else None,
        to_state=step.to_state,
        actor_id=actor.user_id,
        actor_roles=tuple(actor.roles),
        at=now,
        comment=step.comment,
        media_ids=step.media_ids,
        details=dict(step.details),
    )
    return replace(
        incident,
        **step.changes,
        state=step.to_state,
        version=incident.version + 1,
        timeline=(*incident.timeline, entry),
    )


# -- stages and deadlines


def start_stage(incident: Incident, state: str, now: datetime, rules: Rules) -> dict[str, Any]:
    """Fields of a new stage for `state`, its deadline counted in working time from now."""
    stage = STAGE_OF_STATE[state]
    minutes = rules.stage_hours(incident.category, incident.urgency, stage) * 60
    return {
        "stage": stage,
        "stage_seq": incident.stage_seq + 1,
        "stage_started_at": now,
        "stage_due": rules.add_working_minutes(now, minutes),
        "stage_warn_at": rules.add_working_minutes(now, minutes * WARN_FRACTION),
    }


def no_stage() -> dict[str, Any]:
    # stage_seq stays: it only ever grows, so a timer's "done for stage N" marks stay valid.
    return {"stage": None, "stage_started_at": None, "stage_due": None, "stage_warn_at": None}


def shift_stage(incident: Incident, minutes: float, rules: Rules) -> dict[str, Any]:
    """Move the current deadline (and its warning) later by working minutes."""
    # Only cases that are in a stage are extended or resumed.
    assert incident.stage_due is not None and incident.stage_warn_at is not None
    return {
        "stage_due": rules.add_working_minutes(incident.stage_due, minutes),
        "stage_warn_at": rules.add_working_minutes(incident.stage_warn_at, minutes),
    }


def finish(incident: Incident, now: datetime) -> dict[str, Any]:
    """Fields of a case being closed: no stage any more, and when it closed."""
    return {**no_stage(), "closed_at": now}
