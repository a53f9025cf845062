"""The incident loop (闭环): a case from report to evaluation, as a pure state machine.

    report → accept (受理) | reject → register (立案) → dispatch (派遣) → sign (签收)
    → feedback (反馈) → verify (核查): pass → close (结案) → evaluate (评价)
                                        fail → handling again (返工)

Around that line: a department may return a case that is not theirs (退回), a centre may
escalate (上报) to the level above or dispatch down to a lower centre, a handler may ask for
more time (延期), a centre may suspend (挂起) and resume a case, and upper levels supervise
(督办). A grid worker may resolve a small case on the spot (自行处置).

Every state somebody must act in is a *stage* with a deadline in working time, taken from
the catalogue (by category and urgency) and counted on the working calendar; both come in
through `Rules`. Nothing here reads a clock, a database or the network: `now` is passed in
and every command returns a new immutable `Incident` plus the events to publish.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from gridwork_common import roles
from gridwork_common.errors import Conflict, Forbidden, InvalidInput

# ----------------------------------------------------------------------------- errors


class InvalidCommand(InvalidInput):
    """A command field breaks a rule; the message is "field: problem"."""


class IllegalTransition(Conflict):
    """The case's state does not allow the action (someone else may have moved it on)."""

    def __init__(self, message: str, state: str, allowed: Sequence[str]):
        super().__init__(message)
        self.state = state
        self.allowed = tuple(allowed)


class NotPermitted(Forbidden):
    """The state allows the action, but not for this actor's role, territory or department."""


class StaleVersion(Conflict):
    """The caller decided on an older version of the case: reload and decide again."""

    def __init__(self, expected: object, current: int):
        super().__init__(
            f"expected_version: the incident is at version {current}, not {expected}: "
            "reload it and try again"
        )
        self.expected_version = expected
        self.current_version = current


# ----------------------------------------------------------------------------- states

REPORTED = "reported"
ACCEPTED = "accepted"
REJECTED = "rejected"
REGISTERED = "registered"
DISPATCHED = "dispatched"
HANDLING = "handling"
RETURNED = "returned"
AWAITING_VERIFICATION = "awaiting_verification"
VERIFIED = "verified"
CLOSED = "closed"
EVALUATED = "evaluated"
SUSPENDED = "suspended"

STATES = (
    REPORTED,
    ACCEPTED,
    REJECTED,
    REGISTERED,
    DISPATCHED,
    HANDLING,
    RETURNED,
    AWAITING_VERIFICATION,
    VERIFIED,
    CLOSED,
    EVALUATED,
    SUSPENDED,
)
TERMINAL_STATES = frozenset({REJECTED, EVALUATED})
# States in which a department holds the case.
DEPARTMENT_STATES = frozenset({DISPATCHED, HANDLING, AWAITING_VERIFICATION, VERIFIED})

# The stage (and so the deadline) of each state in which somebody must act; closed,
# evaluated and rejected have none, and a suspended case keeps the stage it was in.
STAGE_OF_STATE = {
    REPORTED: "accept",
    ACCEPTED: "register",
    REGISTERED: "dispatch",
    RETURNED: "dispatch",
    DISPATCHED: "sign",
    HANDLING: "handle",
    AWAITING_VERIFICATION: "verify",
    VERIFIED: "close",
}
# A warning is due when this share of a stage's working time has passed.
WARN_FRACTION = 0.8

# Every action in the order lists of them are given in.
ACTIONS = (
    "report",
    "accept",
    "reject",
    "register",
    "dispatch",
    "sign",
    "return",
    "feedback",
    "verify",
    "close",
    "evaluate",
    "escalate",
    "request_extension",
    "decide_extension",
    "suspend",
    "resume",
    "supervise",
)
# Suspension stops the clock of a case being worked on; a fresh report must be accepted or
# rejected first, and a finished case has no clock left to stop.
_SUSPENDABLE = frozenset(
    {ACCEPTED, REGISTERED, DISPATCHED, HANDLING, RETURNED, AWAITING_VERIFICATION, VERIFIED}
)
_SUPERVISABLE = _SUSPENDABLE | {REPORTED, SUSPENDED}
_ACTION_STATES: dict[str, frozenset[str]] = {
    "accept": frozenset({REPORTED}),
    "reject": frozenset({REPORTED}),
    "register": frozenset({ACCEPTED}),
    "dispatch": frozenset({REGISTERED, RETURNED}),
    "sign": frozenset({DISPATCHED}),
    "return": frozenset({DISPATCHED, HANDLING}),
    "feedback": frozenset({HANDLING}),
    "verify": frozenset({AWAITING_VERIFICATION}),
    "close": frozenset({VERIFIED}),
    "evaluate": frozenset({CLOSED}),
    "escalate": frozenset({ACCEPTED, REGISTERED, RETURNED}),
    "request_extension": frozenset({HANDLING}),
    "decide_extension": frozenset({HANDLING}),
    "suspend": _SUSPENDABLE,
    "resume": frozenset({SUSPENDED}),
    "supervise": _SUPERVISABLE,
}
ACTIONS_BY_STATE: dict[str, tuple[str, ...]] = {
    state: tuple(action for action in ACTIONS if state in _ACTION_STATES.get(action, ()))
    for state in STATES
}

URGENCIES = ("normal", "urgent")
REJECT_REASONS = ("duplicate", "not_ours", "invalid")
SATISFACTION_RANGE = range(1, 6)

# Territory codes: county 6 digits, township 9, village 12, grid 15.
COUNTY_LENGTH, TOWNSHIP_LENGTH, VILLAGE_LENGTH, GRID_LENGTH = 6, 9, 12, 15
CENTRE_LENGTHS = (COUNTY_LENGTH, TOWNSHIP_LENGTH, VILLAGE_LENGTH)
_SCOPE_LENGTHS = (*CENTRE_LENGTHS, GRID_LENGTH)

MAX_TEXT_LENGTH = 2000
MAX_MEDIA_PER_ACTION = 20

# Who may create a case, and who may act for a centre (admin and the service's own timer,
# system, may do whatever a centre operator may).
REPORTERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
GRID_ROLES = (roles.GRID_WORKER, roles.GRID_LEADER)


# ----------------------------------------------------------------------------- rules


class Rules(Protocol):
    """What the service supplies from its catalogue, departments and working calendar."""

    def stage_hours(self, category: str, urgency: str, stage: str) -> float: ...

    def on_site_allowed(self, category: str) -> bool: ...

    def department_territory(self, department_code: str) -> str | None: ...

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime: ...

    def working_minutes_between(self, start: datetime, end: datetime) -> float: ...


# ----------------------------------------------------------------------------- model


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
    version: int = 0  # == len(timeline)

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


# ----------------------------------------------------------------------------- commands
# Every command but Report names the version it was decided on (optimistic concurrency).


@dataclass(frozen=True, kw_only=True)
class Report:
    action: ClassVar[str] = "report"
    incident_id: str
    category: str
    urgency: str
    grid_code: str
    description: str
    media_ids: Sequence[str] = ()
    location: tuple[float, float] | None = None
    reporter_id: str | None = None  # defaults to the actor; others report for citizens
    resolved_on_spot: bool = False


@dataclass(frozen=True, kw_only=True)
class Accept:
    action: ClassVar[str] = "accept"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Reject:
    action: ClassVar[str] = "reject"
    expected_version: int
    reason: str
    duplicate_of: str | None = None
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Register:
    action: ClassVar[str] = "register"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Dispatch:
    """To a department at the owning centre's level, or down to a lower centre."""

    action: ClassVar[str] = "dispatch"
    expected_version: int
    department_code: str | None = None
    to_centre: str | None = None
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Sign:
    action: ClassVar[str] = "sign"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Return:
    action: ClassVar[str] = "return"
    expected_version: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Feedback:
    action: ClassVar[str] = "feedback"
    expected_version: int
    result: str
    media_ids: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class Verify:
    action: ClassVar[str] = "verify"
    expected_version: int
    passed: bool
    comment: str = ""
    media_ids: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class Close:
    action: ClassVar[str] = "close"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Evaluate:
    action: ClassVar[str] = "evaluate"
    expected_version: int
    satisfaction: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Escalate:
    action: ClassVar[str] = "escalate"
    expected_version: int
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RequestExtension:
    action: ClassVar[str] = "request_extension"
    expected_version: int
    hours: float
    reason: str


@dataclass(frozen=True, kw_only=True)
class DecideExtension:
    action: ClassVar[str] = "decide_extension"
    expected_version: int
    approve: bool
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Suspend:
    action: ClassVar[str] = "suspend"
    expected_version: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Resume:
    action: ClassVar[str] = "resume"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Supervise:
    action: ClassVar[str] = "supervise"
    expected_version: int
    note: str
    new_due: datetime | None = None  # replaces the current stage's deadline


Command = (
    Accept
    | Reject
    | Register
    | Dispatch
    | Sign
    | Return
    | Feedback
    | Verify
    | Close
    | Evaluate
    | Escalate
    | RequestExtension
    | DecideExtension
    | Suspend
    | Resume
    | Supervise
)


@dataclass(frozen=True)
class Change:
    """The case after a command, and the topics (incident.<name>) to publish about it."""

    action: str
    incident: Incident
    events: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- territory


def first_centre(grid_code: str) -> str:
    """A new case belongs to the centre of its grid's village or community."""
    return grid_code[:VILLAGE_LENGTH]


def centre_above(centre: str) -> str | None:
    """Village → township → county; None above the county."""
    return centre[:-3] if len(centre) > COUNTY_LENGTH else None


def is_centre_code(code: object) -> bool:
    return isinstance(code, str) and _is_digits(code) and len(code) in CENTRE_LENGTHS


def contains(scope: str | None, code: str) -> bool:
    """Whether territory `scope` contains `code` (or is it). Fails closed: no scope, or a
    scope that is not a whole territory code ("", "53"), contains nothing."""
    if not (isinstance(scope, str) and _is_digits(scope) and len(scope) in _SCOPE_LENGTHS):
        return False
    return code.startswith(scope)


def _is_digits(text: str) -> bool:
    # str.isdigit() also accepts full-width and other Unicode digits; codes are ASCII.
    return text.isascii() and text.isdigit()


# ----------------------------------------------------------------------------- permissions


def acts_for_centre(actor: Actor, centre: str) -> bool:
    """An operator of that very centre, an admin over it, or the service's own timer."""
    if actor.has_role(roles.SYSTEM):
        return True
    if actor.has_role(roles.ADMIN) and (actor.scope is None or contains(actor.scope, centre)):
        return True
    return actor.has_role(roles.CENTRE_OPERATOR) and actor.scope == centre


def _centre_refusal(incident: Incident, actor: Actor, action: str) -> str | None:
    if acts_for_centre(actor, incident.owning_centre):
        return None
    return f"only an operator of centre {incident.owning_centre} may {action} this case"


def _department_refusal(incident: Incident, actor: Actor, action: str) -> str | None:
    if (
        actor.has_role(roles.DEPARTMENT_HANDLER)
        and incident.department is not None
        and actor.department == incident.department
    ):
        return None
    return f"only a handler of department {incident.department} may {action} this case"


def _grid_refusal(incident: Incident, actor: Actor, action: str) -> str | None:
    # Verification is done on site, by the people who know the grid.
    if actor.has_role(*GRID_ROLES) and contains(actor.scope, incident.grid_code):
        return None
    return f"only a grid worker or leader of grid {incident.grid_code} may {action} this case"


def _evaluator_refusal(incident: Incident, actor: Actor, action: str) -> str | None:
    # The reporter judges the outcome; the centre may record a judgement given by phone.
    if actor.user_id == incident.reporter_id or acts_for_centre(actor, incident.owning_centre):
        return None
    return f"only the reporter or centre {incident.owning_centre} may {action} this case"


def _supervisor_refusal(incident: Incident, actor: Actor, action: str) -> str | None:
    # 督办 is pressure from above: a centre may not supervise itself or its superiors.
    owner = incident.owning_centre
    if actor.has_role(roles.SYSTEM):
        return None
    if actor.has_role(roles.ADMIN) and (actor.scope is None or contains(actor.scope, owner)):
        return None
    if actor.has_role(roles.LEADER) and (
        actor.scope is None or contains(actor.scope, incident.grid_code)
    ):
        return None
    if actor.has_role(roles.CENTRE_OPERATOR) and contains(actor.scope, owner):
        if actor.scope != owner:
            return None
        return f"centre {owner} may supervise only cases owned by centres below it"
    return f"only a leader or a centre above {owner} may {action} this case"


_REFUSALS: dict[str, Callable[[Incident, Actor, str], str | None]] = {
    "accept": _centre_refusal,
    "reject": _centre_refusal,
    "register": _centre_refusal,
    "dispatch": _centre_refusal,
    "close": _centre_refusal,
    "escalate": _centre_refusal,
    "decide_extension": _centre_refusal,
    "suspend": _centre_refusal,
    "resume": _centre_refusal,
    "sign": _department_refusal,
    "return": _department_refusal,
    "feedback": _department_refusal,
    "request_extension": _department_refusal,
    "verify": _grid_refusal,
    "evaluate": _evaluator_refusal,
    "supervise": _supervisor_refusal,
}


def refusal(incident: Incident, action: str, actor: Actor) -> str | None:
    """Why `actor` may not do `action` to this case (None if they may); state aside."""
    return _REFUSALS[action](incident, actor, action)


def _report_refusal(command: Report, actor: Actor) -> str | None:
    grid = command.grid_code
    if command.reporter_id not in (None, actor.user_id) and not actor.has_role(
        roles.CENTRE_OPERATOR, roles.ADMIN, roles.SYSTEM
    ):
        return "only a centre or the system may report on somebody else's behalf"
    if command.resolved_on_spot:
        # Only someone standing in their own grid can vouch for an on-site resolution.
        if actor.has_role(*GRID_ROLES) and contains(actor.scope, grid):
            return None
        return f"only a grid worker or leader of grid {grid} may resolve a case there on the spot"
    if actor.has_role(roles.SYSTEM):
        return None  # citizens' reports (Open311) come in through the service itself
    if actor.has_role(roles.ADMIN) and actor.scope is None:
        return None
    if actor.has_role(*REPORTERS) and contains(actor.scope, grid):
        return None
    if actor.has_role(*REPORTERS):
        return f"grid {grid} is outside your territory {actor.scope}"
    return "only grid workers, grid leaders, centre operators or the system may report a case"


# ----------------------------------------------------------------------------- queries


def allowed_actions(incident: Incident, actor: Actor | None = None) -> list[str]:
    """What may happen to the case now; with an actor, only what that actor may do."""
    actions = [action for action in ACTIONS_BY_STATE[incident.state] if _possible(incident, action)]
    if actor is None:
        return actions
    return [action for action in actions if refusal(incident, action, actor) is None]


def _possible(incident: Incident, action: str) -> bool:
    # Beyond the state: one extension request at a time, and nothing above the county.
    if action == "request_extension":
        return incident.pending_extension is None
    if action == "decide_extension":
        return incident.pending_extension is not None
    if action == "escalate":
        return centre_above(incident.owning_centre) is not None
    return True


def _impossibility(incident: Incident, action: str) -> str:
    state = incident.state
    allowed = ", ".join(allowed_actions(incident)) or "none"
    why = ""
    if state in _ACTION_STATES[action]:  # the state would do; something else is missing
        if action == "request_extension":
            why = " (an extension request is already pending)"
        elif action == "decide_extension":
            why = " (no extension request is pending)"
        elif action == "escalate":
            why = f" (county centre {incident.owning_centre} has no level above it)"
    return f"cannot {action} a case in state '{state}'{why}; allowed: {allowed}"


# ----------------------------------------------------------------------------- report


def report(command: Report, actor: Actor, now: datetime, rules: Rules) -> Change:
    """Open a case in `reported`, or straight in `closed` when resolved on the spot."""
    _check_aware(now, "now")
    if not isinstance(command, Report):
        raise TypeError(f"report() takes a Report, not {type(command).__name__}")
    _check_report(command)
    why_not = _report_refusal(command, actor)
    if why_not:
        raise NotPermitted(why_not)
    blank = _new_incident(command, actor, now)
    if command.resolved_on_spot:
        _check_on_spot(blank, rules)
    opened = _record(
        blank,
        _Step(REPORTED, ("reported",), _start_stage(blank, REPORTED, now, rules)),
        "report",
        actor,
        now,
    )
    if not command.resolved_on_spot:
        return Change("report", opened, ("reported",))
    # 自行处置: the grid worker's evidence stands in for dispatch, handling and verification.
    closed = _record(
        opened,
        _Step(CLOSED, ("closed",), _finish(opened, now), details={"resolved_on_spot": True}),
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
        media_ids=_media_ids(command.media_ids),
        reporter_id=command.reporter_id or actor.user_id,
        reported_at=now,
        resolved_on_spot=command.resolved_on_spot,
        state=REPORTED,
        owning_centre=centre,
        routing_path=(centre,),
    )


def _check_report(command: Report) -> None:
    _required_text(command.incident_id, "incident_id", max_length=200)
    _required_text(command.category, "category", max_length=200)
    if command.urgency not in URGENCIES:
        raise InvalidCommand("urgency", f"must be one of {', '.join(URGENCIES)}")
    grid = command.grid_code
    if not (isinstance(grid, str) and _is_digits(grid) and len(grid) == GRID_LENGTH):
        raise InvalidCommand("grid_code", f"must be a grid code of {GRID_LENGTH} digits")
    _required_text(command.description, "description")
    if command.reporter_id is not None:
        _required_text(command.reporter_id, "reporter_id", max_length=200)
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
        or not all(_is_number(part) for part in value)
    ):
        raise InvalidCommand("location", "must be a (longitude, latitude) pair of numbers")
    longitude, latitude = float(value[0]), float(value[1])
    if not (-180 <= longitude <= 180 and -90 <= latitude <= 90):
        raise InvalidCommand("location", "longitude must be within ±180 and latitude ±90")
    return (longitude, latitude)


# ----------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class _Step:
    """What an action does: the state it leads to, the fields it changes, what to record."""

    to_state: str
    events: tuple[str, ...] = ()
    changes: Mapping[str, Any] = field(default_factory=dict)
    comment: str = ""
    media_ids: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


def apply(
    incident: Incident, command: Command, actor: Actor, now: datetime, rules: Rules
) -> Change:
    """Run one command. Checks come in the order a caller can act on them: a stale view
    first (reload), then the state, then the actor, then the command's own fields."""
    handler = _HANDLERS.get(type(command))
    if handler is None:
        hint = "; open a case with report()" if isinstance(command, Report) else ""
        raise TypeError(f"not a command on an incident: {type(command).__name__}{hint}")
    _check_aware(now, "now")
    _check_version(incident, command.expected_version)
    action = command.action
    if action not in allowed_actions(incident):
        raise IllegalTransition(
            _impossibility(incident, action), incident.state, allowed_actions(incident)
        )
    why_not = refusal(incident, action, actor)
    if why_not:
        raise NotPermitted(why_not)
    step = handler(incident, command, actor, now, rules)
    return Change(action, _record(incident, step, action, actor, now), step.events)


def _check_version(incident: Incident, expected: object) -> None:
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidCommand("expected_version", "must be the version the decision was made on")
    if expected != incident.version:
        raise StaleVersion(expected, incident.version)


def _record(incident: Incident, step: _Step, action: str, actor: Actor, now: datetime) -> Incident:
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


def _start_stage(incident: Incident, state: str, now: datetime, rules: Rules) -> dict[str, Any]:
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


def _no_stage() -> dict[str, Any]:
    # stage_seq stays: it only ever grows, so a timer's "done for stage N" marks stay valid.
    return {"stage": None, "stage_started_at": None, "stage_due": None, "stage_warn_at": None}


def _shift_stage(incident: Incident, minutes: float, rules: Rules) -> dict[str, Any]:
    """Move the current deadline (and its warning) later by working minutes."""
    # Only cases that are in a stage are extended or resumed.
    assert incident.stage_due is not None and incident.stage_warn_at is not None
    return {
        "stage_due": rules.add_working_minutes(incident.stage_due, minutes),
        "stage_warn_at": rules.add_working_minutes(incident.stage_warn_at, minutes),
    }


def _finish(incident: Incident, now: datetime) -> dict[str, Any]:
    return {**_no_stage(), "closed_at": now}


# -- one handler per action


def _accept(
    incident: Incident, command: Accept, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    return _Step(
        ACCEPTED,
        ("accepted",),
        _start_stage(incident, ACCEPTED, now, rules),
        comment=_optional_text(command.comment, "comment"),
    )


def _reject(
    incident: Incident, command: Reject, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    if command.reason not in REJECT_REASONS:
        raise InvalidCommand("reason", f"must be one of {', '.join(REJECT_REASONS)}")
    duplicate_of = command.duplicate_of
    if command.reason == "duplicate":
        _required_text(duplicate_of, "duplicate_of", max_length=200)
        if duplicate_of == incident.incident_id:
            raise InvalidCommand("duplicate_of", "a case cannot duplicate itself")
    elif duplicate_of is not None:
        raise InvalidCommand("duplicate_of", "is given only with reason 'duplicate'")
    details = {"reason": command.reason}
    if duplicate_of is not None:
        details["duplicate_of"] = duplicate_of
    return _Step(
        REJECTED,
        ("rejected",),
        {**_no_stage(), "rejection_reason": command.reason, "duplicate_of": duplicate_of},
        comment=_optional_text(command.comment, "comment"),
        details=details,
    )


def _register(
    incident: Incident, command: Register, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    return _Step(
        REGISTERED,
        ("registered",),
        _start_stage(incident, REGISTERED, now, rules),
        comment=_optional_text(command.comment, "comment"),
    )


def _dispatch(
    incident: Incident, command: Dispatch, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    comment = _optional_text(command.comment, "comment")
    if command.department_code is not None and command.to_centre is not None:
        raise InvalidCommand("to_centre", "give either department_code or to_centre, not both")
    if command.to_centre is not None:
        return _dispatch_down(incident, command.to_centre, comment, now, rules)
    if command.department_code is None:
        raise InvalidCommand("department_code", "give a department_code or a to_centre")
    department = _check_department(incident, command.department_code, rules)
    return _Step(
        DISPATCHED,
        ("dispatched",),
        {**_start_stage(incident, DISPATCHED, now, rules), "department": department},
        comment=comment,
        details={"department": department},
    )


def _check_department(incident: Incident, code: object, rules: Rules) -> str:
    # A centre commands the departments of its own level; lower ones get the case through
    # their own centre (dispatch down), upper ones through escalation.
    department = _required_text(code, "department_code", max_length=200)
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
) -> _Step:
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
    return _Step(
        REGISTERED,
        ("dispatched",),
        {
            **_start_stage(incident, REGISTERED, now, rules),
            "owning_centre": to_centre,
            "routing_path": (*incident.routing_path, to_centre),
            "department": None,
        },
        comment=comment,
        details={"from_centre": owner, "to_centre": to_centre},
    )


def _sign(incident: Incident, command: Sign, actor: Actor, now: datetime, rules: Rules) -> _Step:
    return _Step(
        HANDLING,
        ("signed",),
        _start_stage(incident, HANDLING, now, rules),
        comment=_optional_text(command.comment, "comment"),
        details={"department": incident.department},
    )


def _return(
    incident: Incident, command: Return, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    reason = _required_text(command.reason, "reason")
    return _Step(
        RETURNED,
        ("returned",),
        {
            **_start_stage(incident, RETURNED, now, rules),
            "department": None,
            "pending_extension": None,  # moot: the department no longer has the case
            "return_count": incident.return_count + 1,
        },
        details={"department": incident.department, "reason": reason},
    )


def _feedback(
    incident: Incident, command: Feedback, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    result = _required_text(command.result, "result")
    return _Step(
        AWAITING_VERIFICATION,
        ("handled",),
        {
            **_start_stage(incident, AWAITING_VERIFICATION, now, rules),
            "result": result,
            "pending_extension": None,  # moot: the work is done
        },
        media_ids=_media_ids(command.media_ids),
        details={"department": incident.department, "result": result},
    )


def _verify(
    incident: Incident, command: Verify, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    if not isinstance(command.passed, bool):
        raise InvalidCommand("passed", "must be true or false")
    comment = _optional_text(command.comment, "comment")
    media_ids = _media_ids(command.media_ids)
    if command.passed:
        return _Step(
            VERIFIED,
            ("verified",),
            _start_stage(incident, VERIFIED, now, rules),
            comment,
            media_ids,
            {"passed": True},
        )
    if not comment.strip():
        raise InvalidCommand("comment", "say what is still wrong when the verification fails")
    # 返工: the same department works on it again, against a fresh handling deadline.
    return _Step(
        HANDLING,
        ("reworked",),
        {**_start_stage(incident, HANDLING, now, rules), "rework_count": incident.rework_count + 1},
        comment,
        media_ids,
        {"passed": False, "department": incident.department},
    )


def _close(incident: Incident, command: Close, actor: Actor, now: datetime, rules: Rules) -> _Step:
    return _Step(
        CLOSED,
        ("closed",),
        _finish(incident, now),
        comment=_optional_text(command.comment, "comment"),
    )


def _evaluate(
    incident: Incident, command: Evaluate, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    satisfaction = command.satisfaction
    if (
        isinstance(satisfaction, bool)
        or not isinstance(satisfaction, int)
        or satisfaction not in SATISFACTION_RANGE
    ):
        raise InvalidCommand("satisfaction", "must be a whole number from 1 to 5")
    return _Step(
        EVALUATED,
        ("evaluated",),
        {"satisfaction": satisfaction},
        comment=_optional_text(command.comment, "comment"),
        # A centre may record a judgement the reporter gave it by phone.
        details={
            "satisfaction": satisfaction,
            "by_reporter": actor.user_id == incident.reporter_id,
        },
    )


def _escalate(
    incident: Incident, command: Escalate, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    owner = incident.owning_centre
    upper = centre_above(owner)
    assert upper is not None  # allowed_actions() refuses escalation above the county
    return _Step(
        REGISTERED,
        ("escalated",),
        {
            **_start_stage(incident, REGISTERED, now, rules),
            "owning_centre": upper,
            "routing_path": (*incident.routing_path, upper),
            "escalation_path": climbed(incident.escalation_path, owner, upper),
            "escalation_count": incident.escalation_count + 1,
            "department": None,
        },
        comment=_optional_text(command.reason, "reason"),
        details={"from_centre": owner, "to_centre": upper},
    )


def climbed(path: tuple[str, ...], from_centre: str, to_centre: str) -> tuple[str, ...]:
    """The escalation path after one more step up; the starting centre is added when the
    path does not already end there (first escalation, or after a dispatch down)."""
    start = () if path and path[-1] == from_centre else (from_centre,)
    return (*path, *start, to_centre)


def _request_extension(
    incident: Incident, command: RequestExtension, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    hours = command.hours
    if not _is_number(hours) or hours <= 0:
        raise InvalidCommand("hours", "must be a positive number of working hours")
    reason = _required_text(command.reason, "reason")
    return _Step(
        HANDLING,
        (),
        {"pending_extension": Extension(hours, reason, actor.user_id, now)},
        details={"hours": hours, "reason": reason},
    )


def _decide_extension(
    incident: Incident, command: DecideExtension, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    if not isinstance(command.approve, bool):
        raise InvalidCommand("approve", "must be true or false")
    comment = _optional_text(command.comment, "comment")
    request = incident.pending_extension
    assert request is not None  # allowed_actions() demands a pending request
    details = {"approved": command.approve, "hours": request.hours}
    if not command.approve:
        return _Step(HANDLING, (), {"pending_extension": None}, comment, details=details)
    return _Step(
        HANDLING,
        ("extended",),
        {
            **_shift_stage(incident, request.hours * 60, rules),
            "pending_extension": None,
            "approved_extensions": incident.approved_extensions + 1,
        },
        comment,
        details=details,
    )


def _suspend(
    incident: Incident, command: Suspend, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    reason = _required_text(command.reason, "reason")
    # The stage stays as it was; resume() pushes its deadline back by the time stopped.
    return _Step(
        SUSPENDED,
        (),
        {"resume_state": incident.state, "suspended_at": now},
        details={"reason": reason},
    )


def _resume(
    incident: Incident, command: Resume, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    assert incident.resume_state is not None and incident.suspended_at is not None
    stopped = rules.working_minutes_between(incident.suspended_at, now)
    return _Step(
        incident.resume_state,
        (),
        {**_shift_stage(incident, stopped, rules), "resume_state": None, "suspended_at": None},
        comment=_optional_text(command.comment, "comment"),
        details={"suspended_minutes": stopped},
    )


def _supervise(
    incident: Incident, command: Supervise, actor: Actor, now: datetime, rules: Rules
) -> _Step:
    note = _required_text(command.note, "note")
    changes: dict[str, Any] = {"supervision_count": incident.supervision_count + 1}
    details: dict[str, Any] = {}
    if command.new_due is not None:
        new_due = command.new_due
        _check_aware(new_due, "new_due")
        if new_due <= now:
            raise InvalidCommand("new_due", "must be later than now")
        # Not a new stage: a deadline already missed stays missed for the assessment.
        warn_at = incident.stage_warn_at
        changes["stage_due"] = new_due
        changes["stage_warn_at"] = new_due if warn_at is None else min(warn_at, new_due)
        details["new_due"] = new_due
    return _Step(incident.state, ("supervised",), changes, comment=note, details=details)


_HANDLERS: dict[type, Callable[[Incident, Any, Actor, datetime, Rules], _Step]] = {
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


# ----------------------------------------------------------------------------- field checks


def _required_text(value: object, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(field, "is required")
    return _optional_text(value, field, max_length)


def _optional_text(value: object, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidCommand(field, "must be text")
    if len(value) > max_length:
        raise InvalidCommand(field, f"must be at most {max_length} characters")
    return value.strip()


def _media_ids(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidCommand("media_ids", "must be a list of media ids")
    if len(value) > MAX_MEDIA_PER_ACTION:
        raise InvalidCommand("media_ids", f"at most {MAX_MEDIA_PER_ACTION} per action")
    for media_id in value:
        if not isinstance(media_id, str) or not media_id.strip():
            raise InvalidCommand("media_ids", "each must be a non-empty media id")
    return tuple(value)


def _is_number(value: object) -> bool:
    # bool is an int to Python, never a coordinate or a number of hours to a user.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_aware(moment: object, field: str) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidCommand(field, "must be a timezone-aware date and time")


# ----------------------------------------------------------------------------- documents
# Stored as plain dicts (MongoDB/JSON): tuples become lists, datetimes stay datetimes.


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


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _aware(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    if isinstance(value, list):
        return [_aware(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _aware(item) for key, item in value.items()}
    return value
