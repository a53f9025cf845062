"""/api/v1/auth (tokens, logout, me) and /api/v1/users (administrators manage users)."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.territory import code_pattern
from services.gateway.api import Api, Call
from services.gateway.auth import ASSIGNABLE_ROLES, render_user
from services.gateway.problems import ApiProblem
from services.gateway.ratelimits import client_address

Role = Literal[ASSIGNABLE_ROLES]  # type: ignore[valid-type]


# What each grant needs besides grant_type: the view checks it, the document states it.
REQUIRED_BY_GRANT = {"password": ("username", "password"), "refresh_token": ("refresh_token",)}


class TokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {
                        "grant_type": {"const": grant},
                        **{name: {"type": "string"} for name in needed},
                    },
                    "required": ["grant_type", *needed],
                }
                for grant, needed in REQUIRED_BY_GRANT.items()
            ]
        },
    )
    grant_type: Literal["password", "refresh_token"]
    username: str | None = Field(default=None, min_length=1, max_length=64)
    password: str | None = Field(default=None, min_length=1, max_length=200)
    refresh_token: str | None = Field(default=None, min_length=1, max_length=200)


class Tokens(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str | None = Field(default=None, max_length=200)


class User(BaseModel):
    username: str
    name: str | None = None
    roles: list[str]
    scope: str | None = None
    department: str | None = None
    disabled: bool = False


class UserList(BaseModel):
    items: list[User]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=10, max_length=200)
    name: str | None = Field(default=None, max_length=100)
    roles: list[Role] = Field(min_length=1)
    scope: str | None = Field(default=None, pattern=code_pattern("county", "grid"))
    department: str | None = Field(default=None, max_length=80)


class UserChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=100)
    roles: list[Role] | None = Field(default=None, min_length=1)
    scope: str | None = Field(default=None, pattern=code_pattern("county", "grid"))
    department: str | None = Field(default=None, max_length=80)
    disabled: bool | None = None


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=10, max_length=200)


def _identity():
    return current_app.extensions["identity"]()


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("identity", __name__, url_prefix="/api/v1")
    api.tag("identity", "Tokens for users, and user management for administrators")

    @api.operation(
        blueprint,
        "POST",
        "/auth/token",
        summary="Get tokens (password or refresh)",
        tag="identity",
        body=TokenRequest,
        response=Tokens,
        public=True,
    )
    def issue_token(call: Call):
        body: TokenRequest = call.body
        for name in REQUIRED_BY_GRANT[body.grant_type]:
            if getattr(body, name) is None:
                raise ApiProblem(
                    400, "Bad Request", f"{name}: is required for this grant_type", field=name
                )
        if body.grant_type == "password":
            # The peer's address, or the one TRUSTED_PROXY_HOPS proxies forwarded.
            # The login's account.login event is written with its tokens (one transaction).
            activity = current_app.extensions["activity"]
            return _identity().login(
                body.username,
                body.password,
                client_address(),
                outbox=activity.outbox(),
                on_login=activity.announce_login,
            )
        return _identity().refresh(body.refresh_token)

    @api.operation(
        blueprint,
        "POST",
        "/auth/logout",
        summary="Revoke this access token (and a refresh token)",
        tag="identity",
        body=LogoutRequest,
        status=204,
    )
    def logout(call: Call):
        _identity().logout(call.claims, call.body.refresh_token)
        return None

    @api.operation(
        blueprint,
        "GET",
        "/auth/me",
        summary="Who the token belongs to",
        tag="identity",
        response=User,
    )
    def me(call: Call):
        return render_user(_identity().user(call.caller.user_id))

    @api.operation(
        blueprint,
        "GET",
        "/users",
        summary="List users",
        tag="identity",
        response=UserList,
        roles=(roles.ADMIN,),
    )
    def list_users(call: Call):
        return {"items": _identity().list_users()}

    @api.operation(
        blueprint,
        "POST",
        "/users",
        summary="Create a user",
        tag="identity",
        body=NewUser,
        response=User,
        status=201,
        roles=(roles.ADMIN,),
        idempotent=True,
    )
    def create_user(call: Call):
        body: NewUser = call.body
        return _identity().create_user(
            body.username, body.password, list(body.roles), body.scope, body.department, body.name
        )

    @api.operation(
        blueprint,
        "PATCH",
        "/users/{username}",
        summary="Change roles, scope, department, or disable a user",
        tag="identity",
        body=UserChanges,
        response=User,
        roles=(roles.ADMIN,),
    )
    def change_user(call: Call):
        changes = call.body.model_dump(exclude_unset=True)
        return _identity().update_user(call.path["username"], changes)

    @api.operation(
        blueprint,
        "POST",
        "/users/{username}/password",
        summary="Reset a user's password (ends their sessions)",
        tag="identity",
        body=NewPassword,
        status=204,
        roles=(roles.ADMIN,),
        idempotent=True,
    )
    def reset_password(call: Call):
        _identity().reset_password(call.path["username"], call.body.password)
        return None

    return blueprint
