"""What the population routes share: the service they call, their tag, the page size type
(its bound is gridwork_common.paging's), the roles the gateway checks itself, the field
types several concerns use and the base models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.paging import MAX_PAGE
from gridwork_common.service_names import POPULATION
from gridwork_common.territory import code_pattern, describe

SERVICE = POPULATION
TAG = "population"

# The roles the gateway checks itself (the service checks every other operation).
ADMINISTRATORS = (roles.ADMIN,)
ROSTER_MANAGERS = (roles.CENTRE_OPERATOR, roles.ADMIN)
IMPORTERS = (roles.CENTRE_OPERATOR, roles.ADMIN)
AUDITORS = (roles.LEADER, roles.ADMIN, roles.CENTRE_OPERATOR)

# Territory codes: county 6 digits, then township, village, grid +3 each, building +5.
TerritoryCode = Annotated[str, Field(pattern=code_pattern(), description=describe())]
GridCode = Annotated[str, Field(pattern=code_pattern("grid", "grid"))]
BuildingCode = Annotated[str, Field(pattern=code_pattern("building", "building"))]
RecordId = Annotated[str, Field(min_length=1, max_length=64)]
Cursor = Annotated[str, Field(min_length=1, max_length=200)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE)]
Version = Annotated[int, Field(strict=True, ge=1)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


def page_args(query) -> dict:
    return {"cursor": query.cursor, "limit": query.limit}


def as_items(result: list) -> dict:
    return {"items": result}
