"""apply(): one command on an open case. The checks come in the order a caller can act on
them (version, state, actor, then the command's fields); then the action's own handler
says what it does, as a Step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.events.domain.incident.commands import (
    Accept,
    Close,
    Command,
    DecideExtension,
    Dispatch,
    Escalate,
    Evaluate,
    Feedback,
    Register,
    Reject,
    Report,
    RequestExtension,
    Resume,
    Return,
    Sign,
    Supervise,
    Suspend,
    Verify,
)
from services.events.domain.incident.errors import (
    IllegalTransition,
    InvalidCommand,
    NotPermitted,
    StaleVersion,
)
from services.events.domain.incident.field_checks import (
    check_aware,
    checked_media_ids,
    is_number,
    optional_text,
    required_text,
)
from services.events.domain.incident.model import Actor, Change, Extension, Incident, Rules
from services.events.domain.incident.permissions import refusal
from services.events.domain.incident.queries import allowed_actions, impossibility
from services.events.domain.incident.steps import (
    Step,
    finish,
    no_stage,
    record,
    shift_stage,
    start_stage,
)
from services.events.domain.incident.territory import COUNTY_LENGTH, centre_above, is_centre_code
from services.events.domain.incident.vocabulary import (
    ACCEPTED,
    AWAITING_VERIFICATION,
    CLOSED,
    DISPATCHED,
    EVALUATED,
    HANDLING,
    REGISTERED,
    REJECT_REASONS,
    REJECTED,
    RETURNED,
    SATISFACTION_RANGE,
    SUSPENDED,
    VERIFIED,
)


def apply(
    incident: Incident, command: Command, actor: Actor, now: datetime, rules: Rules
) -> Change:
    """Run one command. Checks come in the order a caller can act on them: a stale view
    first (reload), then the state, then the actor, then the command's own fields."""
    handler = _HANDLERS.get(type(command))
    if handler is None:
        hint = "; open a case with report()" if isinstance(command, Report) else ""
        raise TypeError(f"not a command on an incident: {type(command).__name__}{hint}")
    check_aware(now, "now")
    _check_version(incident, command.expected_version)
    action = command.action
    if action not in allowed_actions(incident):
        raise IllegalTransition(
            impossibility(incident, action), incident.state, allowed_actions(incident)
        )
    why_not = refusal(incident, action, actor)
    if why_not:
        raise NotPermitted(why_not)
    step = handler(incident, command, actor, now, rules)
    return Change(action, record(incident, step, action, actor, now), step.events)


def _check_version(incident: Incident, expected: object) -> None:
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidCommand("expected_version", "must be the version the decision was made on")
    if expected != incident.version:
        raise StaleVersion(expected, incident.version)


# -- one handler per action


def _accept(incident: Incident, command: Accept, actor: Actor, now: datetime, rules: Rules) -> Step:
    return Step(
        ACCEPTED,
        ("accepted",),
        start_stage(incident, ACCEPTED, now, rules),
        comment=optional_text(command.comment, "comment"),
    )


def _reject(incident: Incident, command: Reject, actor: Actor, now: datetime, rules: Rules) -> Step:
    if command.reason not in REJECT_REASONS:
        raise InvalidCommand("reason", f"must be one of {', '.join(REJECT_REASONS)}")
    duplicate_of = command.duplicate_of
    if command.reason == "duplicate":
        required_text(duplicate_of, "duplicate_of", max_length=200)
        if duplicate_of == incident.incident_id:
            raise InvalidCommand("duplicate_of", "a case cannot duplicate itself")
    elif duplicate_of is not None:
        raise InvalidCommand("duplicate_of", "is given only with reason 'duplicate'")
    details = {"reason": command.reason}
    if duplicate_of is not None:
        details["duplicate_of"] = duplicate_of
    return Step(
        REJECTED,
        ("rejected",),
        {**no_stage(), "rejection_reason": command.reason, "duplicate_of": duplicate_of},
        comment=optional_text(command.comment, "comment"),
        details=details,
    )


def _register(
    incident: Incident, command: Register, actor: Actor, now: datetime, rules: Rules
) -> Step:
    return Step(
        REGISTERED,
        ("registered",),
        start_stage(incident, REGISTERED, now, rules),
        comment=optional_text(command.comment, "comment"),
    )


def _dispatch(
    incident: Incident, command: Dispatch, actor: Actor, now: datetime, rules: Rules
) -> Step:
    comment = optional_text(command.comment, "comment")
    if command.department_code is not None and command.to_centre is not None:
        raise InvalidCommand("to_centre", "give either department_code or to_centre, not both")
    if command.to_centre is not None:
        return _dispatch_down(incident, command.to_centre, comment, now, rules)
    if command.department_code is None:
        raise InvalidCommand("department_code", "give a department_code or a to_centre")
    department = _check_department(incident, command.department_code, rules)
    return Step(
        DISPATCHED,
        ("dispatched",),
        {**start_stage(incident, DISPATCHED, now, rules), "department": department},
        comment=comment,
        details={"department": department},
    )


def _check_department(incident: Incident, code: object, rules: Rules) -> str:
    # A centre commands the departments of its own level; lower ones get the case through
    # their own centre (dispatch down), upper ones through escalation.
    department = required_text(code, "department_code", max_length=200)
    territory = rules.department_territory(department)
    if territory is None:
        raise InvalidCommand("department_code", f"no department {department}")
    if territory != incident.owning_centre:
        raise InvalidCommand(
            "department_code",
            f"{department} belongs to {territory}; centre {incident.owning_centre} "
            "dispatches only to departments of its own level",
        )
    return department


def _dispatch_down(
    incident: Incident, to_centre: object, comment: str, now: datetime, rules: Rules
) -> Step:
    owner = incident.owning_centre
    if (
        not (isinstance(to_centre, str) and is_centre_code(to_centre))
        or len(to_centre) == COUNTY_LENGTH
    ):
        raise InvalidCommand("to_centre", "must be a township (9 digits) or village (12) centre")
    if not incident.grid_code.startswith(to_centre):
        raise InvalidCommand("to_centre", f"{to_centre} does not contain the case's grid")
    if len(to_centre) <= len(owner):
        raise InvalidCommand("to_centre", f"must be a centre below the owning centre {owner}")
    return Step(
        REGISTERED,
        ("dispatched",),
        {
            **start_stage(incident, REGISTERED, now, rules),
            "owning_centre": to_centre,
            "routing_path": (*incident.routing_path, to_centre),
            "department": None,
        },
        comment=comment,
        details={"from_centre": owner, "to_centre": to_centre},
    )


def _sign(incident: Incident, command: Sign, actor: Actor, now: datetime, rules: Rules) -> Step:
    return Step(
        HANDLING,
        ("signed",),
        start_stage(incident, HANDLING, now, rules),
        comment=optional_text(command.comment, "comment"),
        details={"department": incident.department},
    )


def _return(incident: Incident, command: Return, actor: Actor, now: datetime, rules: Rules) -> Step:
    reason = required_text(command.reason, "reason")
    return Step(
        RETURNED,
        ("returned",),
        {
            **start_stage(incident, RETURNED, now, rules),
            "department": None,
            "pending_extension": None,  # moot: the department no longer has the case
            "return_count": incident.return_count + 1,
        },
        details={"department": incident.department, "reason": reason},
    )


def _feedback(
    incident: Incident, command: Feedback, actor: Actor, now: datetime, rules: Rules
) -> Step:
    result = required_text(command.result, "result")
    return Step(
        AWAITING_VERIFICATION,
        ("handled",),
        {
            **start_stage(incident, AWAITING_VERIFICATION, now, rules),
            "result": result,
            "pending_extension": None,  # moot: the work is done
        },
        media_ids=checked_media_ids(command.media_ids),
        details={"department": incident.department, "result": result},
    )


def _verify(incident: Incident, command: Verify, actor: Actor, now: datetime, rules: Rules) -> Step:
    if not isinstance(command.passed, bool):
        raise InvalidCommand("passed", "must be true or false")
    comment = optional_text(command.comment, "comment")
    media_ids = checked_media_ids(command.media_ids)
    if command.passed:
        return Step(
            VERIFIED,
            ("verified",),
            start_stage(incident, VERIFIED, now, rules),
            comment,
            media_ids,
            {"passed": True},
        )
    if not comment.strip():
        raise InvalidCommand("comment", "say what is still wrong when the verification fails")
    # 返工: the same department works on it again, against a fresh handling deadline.
    return Step(
        HANDLING,
        ("reworked",),
        {**start_stage(incident, HANDLING, now, rules), "rework_count": incident.rework_count + 1},
        comment,
        media_ids,
        {"passed": False, "department": incident.department},
    )


def _close(incident: Incident, command: Close, actor: Actor, now: datetime, rules: Rules) -> Step:
    return Step(
        CLOSED,
        ("closed",),
        finish(incident, now),
        comment=optional_text(command.comment, "comment"),
    )


def _evaluate(
    incident: Incident, command: Evaluate, actor: Actor, now: datetime, rules: Rules
) -> Step:
    satisfaction = command.satisfaction
    if (
        isinstance(satisfaction, bool)
        or not isinstance(satisfaction, int)
        or satisfaction not in SATISFACTION_RANGE
    ):
        raise InvalidCommand("satisfaction", "must be a whole number from 1 to 5")
    return Step(
        EVALUATED,
        ("evaluated",),
        {"satisfaction": satisfaction},
        comment=optional_text(command.comment, "comment"),
        # A centre may record a judgement the reporter gave it by phone.
        details={
            "satisfaction": satisfaction,
            "by_reporter": actor.user_id == incident.reporter_id,
        },
    )


def _escalate(
    incident: Incident, command: Escalate, actor: Actor, now: datetime, rules: Rules
) -> Step:
    owner = incident.owning_centre
    upper = centre_above(owner)
    assert upper is not None  # allowed_actions() refuses escalation above the county
    return Step(
        REGISTERED,
        ("escalated",),
        {
            **start_stage(incident, REGISTERED, now, rules),
            "owning_centre": upper,
            "routing_path": (*incident.routing_path, upper),
            "escalation_path": climbed(incident.escalation_path, owner, upper),
            "escalation_count": incident.escalation_count + 1,
            "department": None,
        },
        comment=optional_text(command.reason, "reason"),
        details={"from_centre": owner, "to_centre": upper},
    )


def climbed(path: tuple[str, ...], from_centre: str, to_centre: str) -> tuple[str, ...]:
    """The escalation path after one more step up; the starting centre is added when the
    path does not already end there (first escalation, or after a dispatch down)."""
    start = () if path and path[-1] == from_centre else (from_centre,)
    return (*path, *start, to_centre)


def _request_extension(
    incident: Incident, command: RequestExtension, actor: Actor, now: datetime, rules: Rules
) -> Step:
    hours = command.hours
    if not is_number(hours) or hours <= 0:
        raise InvalidCommand("hours", "must be a positive number of working hours")
    reason = required_text(command.reason, "reason")
    return Step(
        HANDLING,
        (),
        {"pending_extension": Extension(hours, reason, actor.user_id, now)},
        details={"hours": hours, "reason": reason},
    )


def _decide_extension(
    incident: Incident, command: DecideExtension, actor: Actor, now: datetime, rules: Rules
) -> Step:
    if not isinstance(command.approve, bool):
        raise InvalidCommand("approve", "must be true or false")
    comment = optional_text(command.comment, "comment")
    request = incident.pending_extension
    assert request is not None  # allowed_actions() demands a pending request
    details = {"approved": command.approve, "hours": request.hours}
    if not command.approve:
        return Step(HANDLING, (), {"pending_extension": None}, comment, details=details)
    return Step(
        HANDLING,
        ("extended",),
        {
            **shift_stage(incident, request.hours * 60, rules),
            "pending_extension": None,
            "approved_extensions": incident.approved_extensions + 1,
        },
        comment,
        details=details,
    )


def _suspend(
    incident: Incident, command: Suspend, actor: Actor, now: datetime, rules: Rules
) -> Step:
    reason = required_text(command.reason, "reason")
    # The stage stays as it was; resume() pushes its deadline back by the time stopped.
    return Step(
        SUSPENDED,
        (),
        {"resume_state": incident.state, "suspended_at": now},
        details={"reason": reason},
    )


def _resume(incident: Incident, command: Resume, actor: Actor, now: datetime, rules: Rules) -> Step:
    assert incident.resume_state is not None and incident.suspended_at is not None
    stopped = rules.working_minutes_between(incident.suspended_at, now)
    return Step(
        incident.resume_state,
        (),
        {**shift_stage(incident, stopped, rules), "resume_state": None, "suspended_at": None},
        comment=optional_text(command.comment, "comment"),
        details={"suspended_minutes": stopped},
    )


def _supervise(
    incident: Incident, command: Supervise, actor: Actor, now: datetime, rules: Rules
) -> Step:
    note = required_text(command.note, "note")
    changes: dict[str, Any] = {"supervision_count": incident.supervision_count + 1}
    details: dict[str, Any] = {}
    if command.new_due is not None:
        new_due = command.new_due
        check_aware(new_due, "new_due")
        if new_due <= now:
            raise InvalidCommand("new_due", "must be later than now")
        # Not a new stage: a deadline already missed stays missed for the assessment.
        warn_at = incident.stage_warn_at
        changes["stage_due"] = new_due
        changes["stage_warn_at"] = new_due if warn_at is None else min(warn_at, new_due)
        details["new_due"] = new_due
    return Step(incident.state, ("supervised",), changes, comment=note, details=details)


_HANDLERS: dict[type, Callable[[Incident, Any, Actor, datetime, Rules], Step]] = {
    Accept: _accept,
    Reject: _reject,
    Register: _register,
    Dispatch: _dispatch,
    Sign: _sign,
    Return: _return,
    Feedback: _feedback,
    Verify: _verify,
    Close: _close,
    Evaluate: _evaluate,
    Escalate: _escalate,
    RequestExtension: _request_extension,
    DecideExtension: _decide_extension,
    Suspend: _suspend,
    Resume: _resume,
    Supervise: _supervise,
}
