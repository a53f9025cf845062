"""/api/v1/amqp-accounts: departments' own RabbitMQ users (administrators only)."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import idempotency, roles
from gridwork_common.errors import Conflict, InvalidInput, NotFound
from gridwork_common.service_names import EVENTS
from services.gateway.api import Api, Call
from services.gateway.broker_admin import BrokerAdmin
from services.gateway.department_accounts import AccountRecords, DepartmentAccounts
from services.gateway.problems import ApiProblem, key_reused
from services.gateway.store import gateway_db

ADMINS = (roles.ADMIN,)


class NewAmqpAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The department's code, e.g. 530402001-police-station",
    )
    territory: str | None = Field(
        default=None,
        pattern=r"^\d{6}(\d{3}){0,3}$",
        description="Limit the account to this territory subtree (the department's own "
        "territory or one within it); by default all of the department's cases",
    )


class AmqpAccount(BaseModel):
    username: str
    department: str
    territory: str | None = None
    vhost: str
    exchange: str = Field(description="The topic exchange the account may bind to")
    queue_prefix: str = Field(description="The account's queues must be named with this prefix")
    binding_prefix: str = Field(
        description="Every binding key must start with this (`*` standing for the action, "
        "which a binding may name), followed by nothing or by narrower words"
    )
    created_by: str
    created_at: str
    revoked_by: str | None = None
    revoked_at: str | None = None


class NewAmqpAccountAnswer(AmqpAccount):
    password: str = Field(description="Shown once: Gridwork does not keep it")


class AmqpAccountList(BaseModel):
    items: list[AmqpAccount]


def department_accounts() -> DepartmentAccounts:
    """The use case, for this app's settings (the API's routes and the admin page)."""
    settings = current_app.config["GRIDWORK_SETTINGS"]
    return DepartmentAccounts(
        AccountRecords(gateway_db(settings)),
        BrokerAdmin.from_settings(settings),
        settings.amqp_vhost,
        settings.token_secret,
        current_app.extensions["system_clock"],
    )


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("amqp_accounts", __name__, url_prefix="/api/v1")
    api.tag(
        "amqp-accounts",
        "Departments' own RabbitMQ users: they read only their own cases' events",
    )

    @api.operation(
        blueprint,
        "POST",
        "/amqp-accounts",
        summary="Create a department's RabbitMQ user (the password is shown once)",
        tag="amqp-accounts",
        body=NewAmqpAccount,
        response=NewAmqpAccountAnswer,
        status=201,
        roles=ADMINS,
        idempotent=True,
        description="The user may declare and consume queues named `dept.<department>.…` "
        "and bind them to `events.events` only with keys of its own department's cases "
        "(and territory, if given). A department has one account at a time (409 while one "
        "is in force): revoke it to issue a new one.",
    )
    def create_account(call: Call):
        body: NewAmqpAccount = call.body
        known = {row["code"]: row for row in call.rpc(EVENTS, "departments", None)}
        if body.department not in known:
            raise ApiProblem(
                422,
                "Invalid input",
                f"department: no department {body.department}",
                field="department",
            )
        try:
            return department_accounts().create(
                known[body.department], body.territory, call.caller.user_id, call.idempotency_key
            )
        except InvalidInput as exc:
            if exc.field == idempotency.FIELD:
                raise key_reused(exc) from None
            raise ApiProblem(422, "Invalid input", str(exc), field=exc.field) from None
        except Conflict as exc:
            raise ApiProblem(409, "Conflict", str(exc), field="department") from None

    @api.operation(
        blueprint,
        "GET",
        "/amqp-accounts",
        summary="Departments' RabbitMQ users, newest first, with who created and revoked them",
        tag="amqp-accounts",
        response=AmqpAccountList,
        roles=ADMINS,
    )
    def list_accounts(call: Call):
        return {"items": department_accounts().accounts()}

    @api.operation(
        blueprint,
        "DELETE",
        "/amqp-accounts/{department}",
        summary="Revoke a department's RabbitMQ user: delete it and close its connections",
        tag="amqp-accounts",
        status=204,
        roles=ADMINS,
    )
    def revoke_account(call: Call):
        try:
            department_accounts().revoke(call.path["department"], call.caller.user_id)
        except NotFound as exc:
            raise ApiProblem(404, "Not Found", str(exc)) from None
        return None

    return blueprint
