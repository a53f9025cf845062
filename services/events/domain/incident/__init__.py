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

The package, by concern (callers import from the package itself):

    errors        why a command is refused
    vocabulary    states, stages, the actions each state allows, field limits
    territory     centres and scopes as territory codes
    model         Actor, Incident, TimelineEntry, Extension, Change, Rules
    commands      one command per action
    permissions   who may take an action (refusal)
    queries       what may happen now (allowed_actions)
    reporting     report(): opening a case
    steps         recording an action, and stages with their deadlines
    transitions   apply(): one command on an open case, a handler per action
    documents     to and from the stored document
"""

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
from services.events.domain.incident.documents import from_document, to_document
from services.events.domain.incident.errors import (
    IllegalTransition,
    InvalidCommand,
    NotPermitted,
    StaleVersion,
)
from services.events.domain.incident.model import (
    Actor,
    Change,
    Extension,
    Incident,
    Rules,
    TimelineEntry,
)
from services.events.domain.incident.permissions import (
    GRID_ROLES,
    REPORTERS,
    acts_for_centre,
    refusal,
)
from services.events.domain.incident.queries import allowed_actions
from services.events.domain.incident.reporting import report
from services.events.domain.incident.territory import (
    CENTRE_LENGTHS,
    COUNTY_LENGTH,
    GRID_LENGTH,
    TOWNSHIP_LENGTH,
    VILLAGE_LENGTH,
    centre_above,
    contains,
    first_centre,
    is_centre_code,
)
from services.events.domain.incident.transitions import apply, climbed
from services.events.domain.incident.vocabulary import (
    ACCEPTED,
    ACTIONS,
    ACTIONS_BY_STATE,
    AWAITING_VERIFICATION,
    CLOSED,
    DEPARTMENT_STATES,
    DISPATCHED,
    EVALUATED,
    HANDLING,
    MAX_MEDIA_PER_ACTION,
    MAX_TEXT_LENGTH,
    REGISTERED,
    REJECT_REASONS,
    REJECTED,
    REPORTED,
    RETURNED,
    SATISFACTION_RANGE,
    STAGE_OF_STATE,
    STATES,
    SUSPENDED,
    TERMINAL_STATES,
    URGENCIES,
    VERIFIED,
    WARN_FRACTION,
)

__all__ = [
    "ACCEPTED",
    "ACTIONS",
    "ACTIONS_BY_STATE",
    "AWAITING_VERIFICATION",
    "CENTRE_LENGTHS",
    "CLOSED",
    "COUNTY_LENGTH",
    "DEPARTMENT_STATES",
    "DISPATCHED",
    "EVALUATED",
    "GRID_LENGTH",
    "GRID_ROLES",
    "HANDLING",
    "MAX_MEDIA_PER_ACTION",
    "MAX_TEXT_LENGTH",
    "REGISTERED",
    "REJECTED",
    "REJECT_REASONS",
    "REPORTED",
    "REPORTERS",
    "RETURNED",
    "SATISFACTION_RANGE",
    "STAGE_OF_STATE",
    "STATES",
    "SUSPENDED",
    "TERMINAL_STATES",
    "TOWNSHIP_LENGTH",
    "URGENCIES",
    "VERIFIED",
    "VILLAGE_LENGTH",
    "WARN_FRACTION",
    "Accept",
    "Actor",
    "Change",
    "Close",
    "Command",
    "DecideExtension",
    "Dispatch",
    "Escalate",
    "Evaluate",
    "Extension",
    "Feedback",
    "IllegalTransition",
    "Incident",
    "InvalidCommand",
    "NotPermitted",
    "Register",
    "Reject",
    "Report",
    "RequestExtension",
    "Resume",
    "Return",
    "Rules",
    "Sign",
    "StaleVersion",
    "Supervise",
    "Suspend",
    "TimelineEntry",
    "Verify",
    "acts_for_centre",
    "allowed_actions",
    "apply",
    "centre_above",
    "climbed",
    "contains",
    "first_centre",
    "from_document",
    "is_centre_code",
    "refusal",
    "report",
    "to_document",
]
