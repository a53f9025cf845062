"""What the incident routes share: the service they call, text limits (page limits are
gridwork_common.paging's), the roles the gateway checks itself, territory and catalogue
code patterns, and the events service's vocabulary of states."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gridwork_common import roles
from gridwork_common.territory import code_pattern

MAX_TEXT = 2000
MAX_MEDIA = 20

# The events service's vocabulary (the gateway does not import another service's code).
IncidentState = Literal[
    "reported",
    "accepted",
    "rejected",
    "registered",
    "dispatched",
    "handling",
    "returned",
    "awaiting_verification",
    "verified",
    "closed",
    "evaluated",
    "suspended",
]

# Who may ask for what (the events service decides the rest: territory, department, state).
REPORTERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
CENTRE = (roles.CENTRE_OPERATOR, roles.ADMIN)
DEPARTMENT = (roles.DEPARTMENT_HANDLER,)
GRID = (roles.GRID_WORKER, roles.GRID_LEADER)
SUPERVISORS = (roles.LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
SETUP_WRITERS = (roles.ADMIN,)

TERRITORY_CODE = code_pattern("county", "grid")  # county 6 digits, township 9, village 12, grid 15
CENTRE_CODE = code_pattern("county", "village")
BELOW_COUNTY_CENTRE = code_pattern("township", "village")
CATEGORY_CODE = r"^[0-9]{2}\.[0-9]{2}$"
DEPARTMENT_KIND = r"^[a-z][a-z0-9-]{1,40}$"

Text = Annotated[str, Field(max_length=MAX_TEXT)]
RequiredText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
MediaId = Annotated[str, Field(min_length=1, max_length=200)]
MediaIds = Annotated[
    list[MediaId],
    Field(max_length=MAX_MEDIA, description="Media ids (opaque until the media service lands)"),
]
