"""Who may do what with population data. Scope is a territory code: a caller sees the
records under it; the system role (other services, timers) sees the whole county."""

from __future__ import annotations

from gridwork_common import roles
from gridwork_common.context import CallerContext
from services.population.domain.codes import in_scope

# Collect and correct residents, houses, entities.
RECORD_WRITERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
# See the full ID or phone number, with a stated purpose (every reveal is audited).
REVEALERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
# See and change special/vulnerable group memberships.
GROUP_READERS = (
    roles.GRID_WORKER,
    roles.GRID_LEADER,
    roles.CENTRE_OPERATOR,
    roles.ADMIN,
    roles.SYSTEM,
)
GROUP_WRITERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
# Import the territory tree, set visit rules, run bulk imports and roster matching.
ADMINISTRATORS = (roles.ADMIN, roles.SYSTEM)
ROSTER_MANAGERS = (roles.CENTRE_OPERATOR, roles.ADMIN, roles.SYSTEM)
IMPORTERS = (roles.CENTRE_OPERATOR, roles.ADMIN, roles.SYSTEM)
# Read the access audit (supervision of who looked at whom).
AUDITORS = (roles.LEADER, roles.ADMIN, roles.CENTRE_OPERATOR)
VISITORS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR)

MIN_PURPOSE_LENGTH = 4


def sees(caller: CallerContext, code: str | None) -> bool:
    if caller.has_role(roles.SYSTEM):
        return True
    return code is not None and in_scope(code, caller.scope)


def scope_filter(caller: CallerContext, field: str = "path") -> dict:
    """A MongoDB filter limiting a query to the caller's scope (records carry the codes
    of every ancestor in `path`, so one multikey index serves every level)."""
    if caller.has_role(roles.SYSTEM):
        return {}
    if not caller.scope:
        return {field: {"$in": []}}  # no scope: nothing
    return {field: caller.scope}


def within_scope(caller: CallerContext, query: dict) -> dict:
    """`query` narrowed to the caller's scope (kept apart with $and, so a query's own
    `path` condition is never overwritten by the scope's)."""
    scope = scope_filter(caller)
    return {"$and": [query, scope]} if scope else query
