"""/api/v1 population: the territory tree and grids, residents, houses, households, legal
entities, special and vulnerable groups, visits, the access audit, bulk imports and roster
matching.

Every operation calls the population service in the caller's name: the service checks
roles and territory scope (a record outside the caller's scope is answered 404, the same
as one that does not exist). The gateway adds only the obvious coarse role checks
(administration, imports, the access audit) and validates the shape of the input.

Conventions:
- Lists that can grow are pages, `{"items": [...], "next_cursor": str | null}`, read with
  `cursor` (the previous page's `next_cursor`) and `limit` (1..200, default 50).
- Residents are read masked. `?reveal=id_number,phone` asks for full values and needs the
  header `X-Reveal-Purpose` stating why; every reveal is written to the access audit.
- Changing a resident (`PATCH /residents/{id}`, `move`, `deregister`) takes the version
  read, `expected_version`, in the JSON body (no `If-Match`); a stale one is a 409.
"""

from __future__ import annotations

from flask import Blueprint

from services.gateway.api import Api
from services.gateway.routes.population import (
    access_audit,
    groups,
    imports,
    places,
    residents,
    territory,
)
from services.gateway.routes.population.shared import TAG

# In this order: the OpenAPI document lists the operations as they are declared.
CONCERNS = (territory, residents, places, groups, access_audit, imports)


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("population", __name__, url_prefix="/api/v1")
    api.tag(
        TAG,
        "Territory and grids, residents, houses, households, legal entities, special and "
        "vulnerable groups, visits, the access audit, bulk imports and roster matching. "
        "Records outside the caller's territory scope are answered 404.",
    )
    for concern in CONCERNS:
        concern.register(api, blueprint)
    return blueprint
