"""/api/v1/incidents (the incident loop 闭环: report, one operation per action, queries) and
the county's incident setup (/catalogue, /departments, /calendar, /deadline-policy).

Every operation is a thin call to the events service, which owns the rules: who may do
what, in which state, at which version. Its errors come back over RPC and are mapped to
problem+json by services.gateway.problems (a stale version or an illegal transition is 409,
a rule broken is 422, a case outside the caller's scope is 404).
"""

from __future__ import annotations

from flask import Blueprint

from services.gateway.api import Api
from services.gateway.routes.calendar import register_notices
from services.gateway.routes.incidents import actions, cases, county_setup, queries

# In this order: the OpenAPI document lists the operations as they are declared.
SUBJECTS = (cases, actions, queries, county_setup)


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("incidents", __name__, url_prefix="/api/v1")
    api.tag("incidents", "The incident loop (闭环): report, act on, follow and find cases")
    api.tag(
        "incident-setup",
        "The county's catalogue of incidents, departments, working calendar, deadline policy",
    )
    for subject in SUBJECTS:
        subject.register(api, blueprint)
    register_notices(api, blueprint, tag="incident-setup")
    return blueprint
