"""What may happen to a case now and, when an action may not, why not in words."""

from __future__ import annotations

from services.events.domain.incident.model import Actor, Incident
from services.events.domain.incident.permissions import refusal
from services.events.domain.incident.territory import centre_above
from services.events.domain.incident.vocabulary import ACTION_STATES, ACTIONS_BY_STATE


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


def impossibility(incident: Incident, action: str) -> str:
    """Why `action` may not happen to the case now, and what may instead."""
    state = incident.state
    allowed = ", ".join(allowed_actions(incident)) or "none"
    why = ""
    if state in ACTION_STATES[action]:  # the state would do; something else is missing
        if action == "request_extension":
            why = " (an extension request is already pending)"
        elif action == "decide_extension":
            why = " (no extension request is pending)"
        elif action == "escalate":
            why = f" (county centre {incident.owning_centre} has no level above it)"
    return f"cannot {action} a case in state '{state}'{why}; allowed: {allowed}"
