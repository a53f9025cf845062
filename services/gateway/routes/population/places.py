"""/api/v1 houses, households and legal entities: a territory's places and who lives or is
registered in them."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint
from pydantic import Field

from gridwork_common.paging import DEFAULT_PAGE
from services.gateway.api import Api, Call
from services.gateway.routes.population.shared import (
    SERVICE,
    TAG,
    BuildingCode,
    Cursor,
    GridCode,
    Limit,
    RecordId,
    Reply,
    Request,
    TerritoryCode,
    page_args,
)

Relation = Literal[
    "spouse", "child", "parent", "grandchild", "grandparent", "sibling", "child_in_law", "other"
]


class NewHouse(Request):
    building_code: BuildingCode
    room: str = Field(min_length=1, max_length=20)
    address: str | None = Field(default=None, max_length=200)
    rental_status: Literal["owner_occupied", "rented", "vacant"] = "owner_occupied"
    owner_resident_id: RecordId | None = None


class House(Reply):
    id: str
    building_code: str
    grid_code: str
    room: str
    address: str | None = None
    rental_status: Literal["owner_occupied", "rented", "vacant"]
    owner_resident_id: str | None = None
    tenant_ids: list[str]


class PlaceListQuery(Request):
    code: TerritoryCode
    cursor: Cursor | None = None
    limit: Limit = DEFAULT_PAGE


class HousePage(Reply):
    items: list[House]
    next_cursor: str | None


class Tenants(Request):
    tenant_ids: list[RecordId] = Field(
        max_length=100, description="the whole list of tenants (resident ids)"
    )


class NewHousehold(Request):
    house_id: RecordId
    head_resident_id: RecordId


class NewHouseholdMember(Request):
    resident_id: RecordId
    relation: Relation


class HouseholdMember(Reply):
    resident_id: str
    name: str
    relation: str | None = None


class Household(Reply):
    id: str
    house_id: str
    grid_code: str
    head_resident_id: str
    members: list[HouseholdMember]


class NewEntity(Request):
    credit_code: str = Field(min_length=1, max_length=18, description="unified social credit code")
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=50)
    grid_code: GridCode
    address: str | None = Field(default=None, max_length=200)
    legal_representative: str | None = Field(default=None, max_length=50)


class Entity(Reply):
    credit_code: str
    name: str
    type: str
    address: str | None = None
    legal_representative: str | None = None
    grid_code: str


class EntityPage(Reply):
    items: list[Entity]
    next_cursor: str | None


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/houses",
        summary="Record a house or room (its id is building code + room)",
        tag=TAG,
        body=NewHouse,
        response=House,
        status=201,
        idempotent=True,
    )
    def add_house(call: Call):
        return call.rpc(SERVICE, "add_house", call.body.model_dump())

    @api.operation(
        blueprint,
        "GET",
        "/houses",
        summary="Houses under a territory node, a page at a time",
        tag=TAG,
        query=PlaceListQuery,
        response=HousePage,
    )
    def list_houses(call: Call):
        return call.rpc(SERVICE, "list_houses", call.query.code, **page_args(call.query))

    @api.operation(
        blueprint, "GET", "/houses/{house_id}", summary="A house", tag=TAG, response=House
    )
    def get_house(call: Call):
        return call.rpc(SERVICE, "get_house", call.path["house_id"])

    @api.operation(
        blueprint,
        "POST",
        "/houses/{house_id}/tenants",
        summary="Replace the tenants of a rented house",
        tag=TAG,
        body=Tenants,
        response=House,
        idempotent=True,
    )
    def set_tenants(call: Call):
        return call.rpc(SERVICE, "set_tenants", call.path["house_id"], call.body.tenant_ids)

    @api.operation(
        blueprint,
        "POST",
        "/households",
        summary="Create a household in a house, headed by a resident",
        tag=TAG,
        body=NewHousehold,
        response=Household,
        status=201,
        idempotent=True,
    )
    def create_household(call: Call):
        body: NewHousehold = call.body
        return call.rpc(SERVICE, "create_household", body.house_id, body.head_resident_id)

    @api.operation(
        blueprint,
        "GET",
        "/households/{household_id}",
        summary="A household and its members",
        tag=TAG,
        response=Household,
    )
    def get_household(call: Call):
        return call.rpc(SERVICE, "get_household", call.path["household_id"])

    @api.operation(
        blueprint,
        "POST",
        "/households/{household_id}/members",
        summary="Add a resident to a household",
        tag=TAG,
        body=NewHouseholdMember,
        response=Household,
        idempotent=True,
    )
    def add_household_member(call: Call):
        body: NewHouseholdMember = call.body
        return call.rpc(
            SERVICE,
            "add_household_member",
            call.path["household_id"],
            body.resident_id,
            body.relation,
        )

    @api.operation(
        blueprint,
        "POST",
        "/entities",
        summary="Register (or update) a legal entity by its credit code",
        tag=TAG,
        body=NewEntity,
        response=Entity,
        status=201,
        idempotent=True,
    )
    def register_entity(call: Call):
        return call.rpc(SERVICE, "register_entity", call.body.model_dump(exclude_none=True))

    @api.operation(
        blueprint,
        "GET",
        "/entities",
        summary="Legal entities under a territory node, a page at a time",
        tag=TAG,
        query=PlaceListQuery,
        response=EntityPage,
    )
    def list_entities(call: Call):
        return call.rpc(SERVICE, "list_entities", call.query.code, **page_args(call.query))

    @api.operation(
        blueprint,
        "GET",
        "/entities/{credit_code}",
        summary="A legal entity",
        tag=TAG,
        response=Entity,
    )
    def get_entity(call: Call):
        return call.rpc(SERVICE, "get_entity", call.path["credit_code"])
