"""/api/v1/subscriptions: webhooks for departments without AMQP."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.errors import InvalidInput
from gridwork_common.territory import code_pattern
from services.gateway.api import Api, Call
from services.gateway.problems import ApiProblem, key_reused
from services.gateway.store import gateway_db
from services.gateway.webhooks import InvalidSubscription, Webhooks

MANAGERS = (roles.DEPARTMENT_HANDLER, roles.CENTRE_OPERATOR, roles.ADMIN)


class NewSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    event_types: list[str] = Field(
        min_length=1, max_length=50, description="e.g. incident.closed, incident.*"
    )
    territory: str | None = Field(default=None, pattern=code_pattern("county", "grid"))
    department: str | None = Field(default=None, max_length=80)


class Subscription(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    url: str
    event_types: list[str]
    territory: str | None = None
    department: str | None = None
    created_at: str


class NewSubscriptionAnswer(Subscription):
    secret: str = Field(
        description="Standard Webhooks secret (whsec_ and a base64 key) that signs "
        "webhook-signature (and, for this release only, X-Gridwork-Signature); shown once"
    )


class SubscriptionList(BaseModel):
    items: list[Subscription]


class Delivery(BaseModel):
    id: str
    event_id: str
    event_type: str
    state: str
    attempts: int
    last_error: str | None = None


class DeliveryList(BaseModel):
    items: list[Delivery]


def _webhooks() -> Webhooks:
    return Webhooks(
        gateway_db(current_app.config["GRIDWORK_SETTINGS"]),
        clock=current_app.extensions["system_clock"],
    )


def _owner(call: Call) -> str | None:
    return None if call.caller.has_role(roles.ADMIN) else call.caller.user_id


def _owned(call: Call, subscription_id: str) -> dict:
    try:
        return _webhooks().subscription(subscription_id, _owner(call))
    except LookupError:
        raise ApiProblem(404, "Not Found", f"no subscription {subscription_id}") from None


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("subscriptions", __name__, url_prefix="/api/v1")
    api.tag(
        "subscriptions", "Webhooks: CloudEvents over HTTP, signed per Standard Webhooks, retried"
    )

    @api.operation(
        blueprint,
        "POST",
        "/subscriptions",
        summary="Subscribe a URL to events",
        tag="subscriptions",
        body=NewSubscription,
        response=NewSubscriptionAnswer,
        status=201,
        roles=MANAGERS,
        idempotent=True,
    )
    def subscribe(call: Call):
        body: NewSubscription = call.body
        department = body.department
        if call.caller.has_role(roles.DEPARTMENT_HANDLER) and not call.caller.has_role(roles.ADMIN):
            department = call.caller.department  # a department hears its own cases only
        territory = body.territory or call.caller.scope
        if not call.caller.has_role(roles.ADMIN) and not str(territory or "").startswith(
            call.caller.scope or "-"
        ):
            raise ApiProblem(403, "Forbidden", "territory: outside your scope", field="territory")
        for event_type in body.event_types:
            entity, _, action = event_type.partition(".")
            if not entity.isidentifier() or not (action == "*" or action.isidentifier()):
                raise ApiProblem(
                    422,
                    "Invalid input",
                    f"event_types: {event_type!r} is not entity.action or entity.*",
                    field="event_types",
                )
        try:
            return _webhooks().subscribe(
                call.caller.user_id,
                body.url,
                body.event_types,
                territory,
                department,
                call.idempotency_key,
            )
        except InvalidSubscription as exc:
            raise ApiProblem(422, "Invalid input", str(exc), field=exc.field) from None
        except InvalidInput as exc:  # the key of another subscription request
            raise key_reused(exc) from None

    @api.operation(
        blueprint,
        "GET",
        "/subscriptions",
        summary="Your subscriptions",
        tag="subscriptions",
        response=SubscriptionList,
        roles=MANAGERS,
    )
    def list_subscriptions(call: Call):
        return {"items": _webhooks().subscriptions(_owner(call))}

    @api.operation(
        blueprint,
        "DELETE",
        "/subscriptions/{subscription_id}",
        summary="Unsubscribe",
        tag="subscriptions",
        status=204,
        roles=MANAGERS,
    )
    def unsubscribe(call: Call):
        _owned(call, call.path["subscription_id"])
        _webhooks().unsubscribe(call.path["subscription_id"], _owner(call))
        return None

    @api.operation(
        blueprint,
        "GET",
        "/subscriptions/{subscription_id}/dead-letters",
        summary="Deliveries that failed every retry",
        tag="subscriptions",
        response=DeliveryList,
        roles=MANAGERS,
    )
    def dead_letters(call: Call):
        _owned(call, call.path["subscription_id"])
        return {"items": _webhooks().dead_letters(call.path["subscription_id"])}

    @api.operation(
        blueprint,
        "POST",
        "/subscriptions/{subscription_id}/dead-letters/{delivery_id}/replay",
        summary="Send a dead delivery again",
        tag="subscriptions",
        response=Delivery,
        roles=MANAGERS,
        idempotent=True,
    )
    def replay(call: Call):
        _owned(call, call.path["subscription_id"])
        try:
            return _webhooks().replay(call.path["subscription_id"], call.path["delivery_id"])
        except LookupError:
            raise ApiProblem(404, "Not Found", "no such dead delivery") from None

    return blueprint
