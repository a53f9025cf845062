"""/api/v1/assessment: indicators, scorecards with stars and bottom ranks, scoring rules
and integrity flags (the assessment service; scope and roles are enforced there)."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from services.gateway.api import Api, Call

SERVICE = "assessment"
TAG = "assessment"
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
READERS = (roles.LEADER, roles.ADMIN, roles.CENTRE_OPERATOR)


class IndicatorQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    territory: str = Field(pattern=r"^\d{6}(\d{3}){0,3}$")
    period: str = Field(pattern=PERIOD)


class ScorecardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["county", "township", "village", "grid", "department", "worker"]
    period: str = Field(pattern=PERIOD)


class PeriodQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=PERIOD)


class Indicators(BaseModel):
    model_config = ConfigDict(extra="allow")
    territory: str
    period: str


class Scorecards(BaseModel):
    model_config = ConfigDict(extra="allow")
    level: str
    period: str
    rules_version: int
    items: list[dict[str, Any]]
    bottom: list[str]


class Publication(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["county", "township", "village", "grid", "department", "worker"]
    period: str = Field(pattern=PERIOD)


class BulletinQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=PERIOD)
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
        summary="Indicators of a territory node for a month",
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
        summary="Scorecards of a level for a month, ranked, with stars and the bottom ranks",
        tag=TAG,
        query=ScorecardQuery,
        response=Scorecards,
        roles=READERS,
    )
    def scorecards(call: Call):
        return call.rpc(SERVICE, "scorecards", call.query.level, call.query.period)

    @api.operation(
        blueprint,
        "POST",
        "/publications",
        summary="Publish a level's scorecards for a month (kept as scored)",
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
        query=PeriodQuery,
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
