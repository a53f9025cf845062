"""/api/v1/incidents/{incident_id}/<action>: one operation per step of the incident loop
(accept, reject, register, dispatch, sign, return, feedback, verify, close, evaluate,
escalate, extensions, suspend, resume, supervise), each a command on the case's version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common.service_names import EVENTS
from services.gateway.api import Api, Call
from services.gateway.fields import IsoDateTime
from services.gateway.routes.incidents.cases import Incident
from services.gateway.routes.incidents.shared import (
    BELOW_COUNTY_CENTRE,
    CENTRE,
    DEPARTMENT,
    GRID,
    SUPERVISORS,
    MediaIds,
    RequiredText,
    Text,
)

Version = Annotated[
    int, Field(ge=1, description="The version of the case the decision was made on")
]


class AcceptCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class RejectCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: Literal["duplicate", "not_ours", "invalid"]
    duplicate_of: str | None = Field(
        default=None, min_length=1, max_length=200, description="With reason 'duplicate'"
    )
    comment: Text = ""


class RegisterCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class DispatchCommand(BaseModel):
    """Either to a department of the owning centre's level or down to a lower centre."""

    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    department_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="<centre code>-<department kind>, e.g. 530402001-police-station",
    )
    to_centre: str | None = Field(
        default=None,
        pattern=BELOW_COUNTY_CENTRE,
        description="A township or village centre below the owning centre",
    )
    comment: Text = ""


class SignCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class ReturnCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: RequiredText


class FeedbackCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    result: RequiredText
    media_ids: MediaIds = []


class VerifyCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    passed: bool
    comment: Text = Field(default="", description="Required when the verification fails")
    media_ids: MediaIds = []


class CloseCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class EvaluateCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    satisfaction: int = Field(ge=1, le=5)
    comment: Text = ""


class EscalateCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: Text = ""


class RequestExtensionCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    hours: float = Field(gt=0, le=2000, description="Working hours asked for")
    reason: RequiredText


class DecideExtensionCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    approve: bool
    comment: Text = ""


class SuspendCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    reason: RequiredText


class ResumeCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    comment: Text = ""


class SuperviseCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: Version
    note: RequiredText
    new_due: IsoDateTime | None = Field(
        default=None, description="A new deadline for the current stage (ISO 8601 with offset)"
    )


@dataclass(frozen=True)
class Action:
    path: str  # the last path segment
    name: str  # the events service's action
    body: type[BaseModel]
    summary: str
    roles: tuple[str, ...] | None


ACTIONS = (
    Action("accept", "accept", AcceptCommand, "Accept a reported case (受理)", CENTRE),
    Action("reject", "reject", RejectCommand, "Reject a reported case", CENTRE),
    Action("register", "register", RegisterCommand, "Register an accepted case (立案)", CENTRE),
    Action(
        "dispatch",
        "dispatch",
        DispatchCommand,
        "Dispatch to a department, or down to a lower centre (派遣)",
        CENTRE,
    ),
    Action("sign", "sign", SignCommand, "Sign for a dispatched case (签收)", DEPARTMENT),
    Action("return", "return", ReturnCommand, "Return a case that is not ours (退回)", DEPARTMENT),
    Action("feedback", "feedback", FeedbackCommand, "Report the work done (反馈)", DEPARTMENT),
    Action("verify", "verify", VerifyCommand, "Verify the work on site (核查)", GRID),
    Action("close", "close", CloseCommand, "Close a verified case (结案)", CENTRE),
    Action(
        "evaluate",
        "evaluate",
        EvaluateCommand,
        "Evaluate a closed case (评价): the reporter, or the centre for them",
        None,
    ),
    Action("escalate", "escalate", EscalateCommand, "Escalate to the centre above (上报)", CENTRE),
    Action(
        "request-extension",
        "request_extension",
        RequestExtensionCommand,
        "Ask for more working time (延期申请)",
        DEPARTMENT,
    ),
    Action(
        "decide-extension",
        "decide_extension",
        DecideExtensionCommand,
        "Approve or refuse a pending extension request",
        CENTRE,
    ),
    Action("suspend", "suspend", SuspendCommand, "Suspend a case: its clock stops (挂起)", CENTRE),
    Action("resume", "resume", ResumeCommand, "Resume a suspended case", CENTRE),
    Action(
        "supervise",
        "supervise",
        SuperviseCommand,
        "Supervise a case from above (督办), optionally setting a new deadline",
        SUPERVISORS,
    ),
)
ACTION_DESCRIPTION = (
    "Runs one step of the loop. 409 when the case is at another version (reload) or its "
    "state does not allow the step; 403 when the caller may not take it; a retry with the "
    "same Idempotency-Key returns the first answer."
)


def register(api: Api, blueprint: Blueprint) -> None:
    for action in ACTIONS:
        _register_action(api, blueprint, action)


def _register_action(api: Api, blueprint: Blueprint, action: Action) -> None:
    def act(call: Call):
        body = call.body
        fields = body.model_dump(mode="json", exclude={"expected_version"}, exclude_unset=True)
        return call.rpc(
            EVENTS,
            "act",
            call.path["incident_id"],
            action.name,
            body.expected_version,
            call.idempotency_key,
            fields,
        )

    act.__name__ = f"{action.name}_incident"
    api.operation(
        blueprint,
        "POST",
        f"/incidents/{{incident_id}}/{action.path}",
        summary=action.summary,
        tag="incidents",
        body=action.body,
        response=Incident,
        roles=action.roles,
        idempotent=True,
        description=ACTION_DESCRIPTION,
    )(act)
