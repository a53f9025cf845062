"""/api/v1/assessment: indicators, scorecards with stars and bottom ranks, scoring rules
and integrity flags (the assessment service; scope and roles are enforced there)."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.periods import MONTH_PATTERN, PERIOD_DESCRIPTION, PERIOD_PATTERN
from gridwork_common.service_names import ASSESSMENT
from gridwork_common.territory import code_pattern
from services.gateway.api import Api, Call

SERVICE = ASSESSMENT
TAG = "assessment"
LEVEL = Literal["county", "township", "village", "grid", "department", "worker"]
READERS = (roles.LEADER, roles.ADMIN, roles.CENTRE_OPERATOR)


class IndicatorQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    territory: str = Field(pattern=code_pattern("county", "grid"))
    period: str = Field(pattern=PERIOD_PATTERN, description=PERIOD_DESCRIPTION)


class ScorecardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: LEVEL
    period: str = Field(pattern=PERIOD_PATTERN, description=PERIOD_DESCRIPTION)
    rules_version: int | None = Field(
        default=None, ge=1, description="Recompute under this rule-set version"
    )


class PublishedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: LEVEL
    period: str = Field(pattern=PERIOD_PATTERN, description=PERIOD_DESCRIPTION)


class Publications(BaseModel):
    items: list[dict[str, Any]] = Field(description="One board per rule version, oldest first")


class MonthQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=MONTH_PATTERN)


class Indicators(BaseModel):
    model_config = ConfigDict(extra="allow")
    territory: str
    period: str


class Scorecards(BaseModel):
    model_config = ConfigDict(extra="allow")
    level: str
    period: str
    rules_version: int
    items: list[dict[str, Any]] = Field(
        description="Best first; `rank` is a standard competition rank (equal scores share "
        "it: 1, 2, 2, 4), a tie listed in subject order"
    )
    bottom: list[str] = Field(
        description="The bottom 3 (末位), lowest first: every subject with fewer than 3 "
        "scoring strictly lower (a tie at the cut all in), never those sharing the best score"
    )


class Publication(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: LEVEL
    period: str = Field(
        pattern=PERIOD_PATTERN, description=f"{PERIOD_DESCRIPTION}; ended at least three days ago"
    )


class BulletinQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=MONTH_PATTERN)
    format: Literal["html", "csv"] = "html"


class Flags(BaseModel):
    items: list[dict[str, Any]]


class RuleSets(BaseModel):
    items: list[dict[str, Any]]


BULLETIN_RESPONSE = {
    "description": "The bulletin",
    "content": {
        "text/html": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("assessment", __name__, url_prefix="/api/v1/assessment")
    api.tag(TAG, "Performance scoring from work traces")

    @api.operation(
        blueprint,
        "GET",
        "/indicators",
        summary="Indicators and rates of a territory node for a period",
        tag=TAG,
        query=IndicatorQuery,
        response=Indicators,
        roles=READERS,
    )
    def indicators(call: Call):
        return call.rpc(SERVICE, "indicators", call.query.territory, call.query.period)

    @api.operation(
        blueprint,
        "GET",
        "/scorecards",
        summary="Scorecards of a level for a period, ranked, with stars and the bottom ranks",
        tag=TAG,
        query=ScorecardQuery,
        response=Scorecards,
        roles=READERS,
    )
    def scorecards(call: Call):
        query = call.query
        return call.rpc(SERVICE, "scorecards", query.level, query.period, query.rules_version)

    @api.operation(
        blueprint,
        "GET",
        "/publications",
        summary="A level's scorecards exactly as published for a period, per rule version",
        tag=TAG,
        query=PublishedQuery,
        response=Publications,
        roles=READERS,
    )
    def published(call: Call):
        query = call.query
        return {"items": call.rpc(SERVICE, "published_scorecards", query.level, query.period)}

    @api.operation(
        blueprint,
        "POST",
        "/publications",
        summary="Publish a level's scorecards for a settled period (kept as scored)",
        tag=TAG,
        body=Publication,
        response=Scorecards,
        roles=(roles.ADMIN,),
        idempotent=True,
    )
    def publish(call: Call):
        return call.rpc(SERVICE, "publish_scorecards", call.body.level, call.body.period)

    @api.operation(
        blueprint,
        "GET",
        "/integrity-flags",
        summary="Integrity signals for supervisors (never deducted automatically)",
        tag=TAG,
        query=MonthQuery,
        response=Flags,
        roles=READERS,
    )
    def flags(call: Call):
        return {"items": call.rpc(SERVICE, "integrity_flags", call.query.period)}

    @api.operation(
        blueprint,
        "GET",
        "/bulletin",
        summary="The county's monthly bulletin (HTML with charts, or CSV of every scorecard)",
        tag=TAG,
        query=BulletinQuery,
        roles=READERS,
        raw_response=BULLETIN_RESPONSE,
    )
    def bulletin(call: Call):
        content = call.rpc(SERVICE, "bulletin", call.query.period, call.query.format)
        if call.query.format == "csv":
            response = Response(content, content_type="text/csv; charset=utf-8")
            response.headers["Content-Disposition"] = (
                f'attachment; filename="bulletin-{call.query.period}.csv"'
            )
            return response
        response = Response(content, content_type="text/html; charset=utf-8")
        # The page has inline styles and SVG charts, nothing else.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'"
        )
        return response

    @api.operation(
        blueprint,
        "GET",
        "/rule-sets",
        summary="Scoring rule sets, by version",
        tag=TAG,
        response=RuleSets,
        roles=READERS,
    )
    def rule_sets(call: Call):
        return {"items": call.rpc(SERVICE, "rule_sets")}

    return blueprint
