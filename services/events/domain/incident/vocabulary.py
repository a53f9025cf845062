"""The loop's words: its states, the stage (and so the deadline) of each, the actions each
state allows, and the limits of a command's fields."""

from __future__ import annotations

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
# The states each action may be taken in (queries.allowed_actions adds what else it needs).
ACTION_STATES: dict[str, frozenset[str]] = {
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
    state: tuple(action for action in ACTIONS if state in ACTION_STATES.get(action, ()))
    for state in STATES
}

URGENCIES = ("normal", "urgent")
REJECT_REASONS = ("duplicate", "not_ours", "invalid")
SATISFACTION_RANGE = range(1, 6)

MAX_TEXT_LENGTH = 2000
MAX_MEDIA_PER_ACTION = 20
