"""Who may act on a case: for each action, why an actor's role, territory or department
does not allow it (None when it does), whatever the case's state."""

from __future__ import annotations

from collections.abc import Callable

from gridwork_common import roles
from services.events.domain.incident.commands import Report
from services.events.domain.incident.model import Actor, Incident
from services.events.domain.incident.territory import contains

# Who may create a case, and who may act for a centre (admin and the service's own timer,
# system, may do whatever a centre operator may).
REPORTERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
GRID_ROLES = (roles.GRID_WORKER, roles.GRID_LEADER)


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


def report_refusal(command: Report, actor: Actor) -> str | None:
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
