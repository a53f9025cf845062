"""Houses and rooms (rented ones with tenants), households, legal entities."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from pymongo.errors import DuplicateKeyError

from gridwork_common import roles
from gridwork_common.errors import Conflict, InvalidInput
from services.population import store
from services.population.domain import access
from services.population.domain.codes import level_of, parent_code, path_codes
from services.population.domain.identity import parse_credit_code
from services.population.domain.residents import (
    ACTIVE,
    RELATIONS,
)
from services.population.usecases.base import UseCases

RENTAL_STATUSES = ("owner_occupied", "rented", "vacant")


class PlaceUseCases(UseCases):
    def add_house(self, raw: Mapping) -> dict:
        self.require(access.RECORD_WRITERS, "recording houses")
        building = str(raw.get("building_code") or "")
        if level_of(building, "building_code") != "building":
            raise InvalidInput("building_code", "must be a 20-digit building code")
        grid_code = parent_code(building)
        self._grid(grid_code)
        room = str(raw.get("room") or "").strip()
        if not room or len(room) > 20:
            raise InvalidInput("room", "is required (at most 20 characters)")
        status = raw.get("rental_status") or "owner_occupied"
        if status not in RENTAL_STATUSES:
            raise InvalidInput("rental_status", f"must be one of {', '.join(RENTAL_STATUSES)}")
        owner = raw.get("owner_resident_id")
        if owner is not None:
            self._resident(owner)
        house_id = f"{building}-{room}"
        document = {
            "_id": house_id,
            "building_code": building,
            "grid_code": grid_code,
            "path": path_codes(building),
            "room": room,
            "address": str(raw.get("address") or "").strip()[:200] or None,
            "rental_status": status,
            "owner_resident_id": owner,
            "tenant_ids": [],
        }
        # The house id is derived from building and room: a retried request finds it.
        self.db[store.HOUSES].update_one({"_id": house_id}, {"$setOnInsert": document}, upsert=True)
        return self.get_house(house_id)

    def get_house(self, house_id: str) -> dict:
        doc = self._visible(self.db[store.HOUSES].find_one({"_id": house_id}), "house", house_id)
        return _render_house(doc)

    def list_houses(self, code: str, cursor: str | None = None, limit: int = 50) -> dict:
        level_of(code)
        return self._page(store.HOUSES, {"path": code}, cursor, limit, _render_house)

    def set_tenants(self, house_id: str, tenant_ids: list[str]) -> dict:
        self.require(access.RECORD_WRITERS, "recording tenants")
        house = self._visible(self.db[store.HOUSES].find_one({"_id": house_id}), "house", house_id)
        if not isinstance(tenant_ids, list):
            raise InvalidInput("tenant_ids", "must be a list of resident ids")
        if tenant_ids and house["rental_status"] != "rented":
            raise InvalidInput("tenant_ids", "only a rented house has tenants")
        for tenant in tenant_ids:
            self._resident(tenant)
        self.db[store.HOUSES].update_one({"_id": house_id}, {"$set": {"tenant_ids": tenant_ids}})
        return self.get_house(house_id)

    def create_household(self, house_id: str, head_resident_id: str) -> dict:
        self.require(access.RECORD_WRITERS, "recording households")
        house = self._visible(self.db[store.HOUSES].find_one({"_id": house_id}), "house", house_id)
        head = self._resident(head_resident_id)
        if head["grid_code"] != house["grid_code"]:
            raise InvalidInput("head_resident_id", "the head must live in the house's grid")
        document = {
            "_id": uuid.uuid4().hex,
            "house_id": house_id,
            "head_resident_id": head_resident_id,
            "grid_code": house["grid_code"],
            "path": house["path"][:-1],
            "created_at": self.clock(),
        }
        try:
            self.db[store.HOUSEHOLDS].insert_one(document)
        except DuplicateKeyError:  # a retried request: the same head in the same house
            document = self.db[store.HOUSEHOLDS].find_one(
                {"house_id": house_id, "head_resident_id": head_resident_id}
            )
        if head.get("household_id") != document["_id"]:
            self._apply_change(
                head,
                head["version"],
                {"household_id": document["_id"], "relation_to_head": "head", "house_id": house_id},
                {"household_id": (head.get("household_id"), document["_id"])},
                "updated",
            )
        return self.get_household(document["_id"])

    def add_household_member(self, household_id: str, resident_id: str, relation: str) -> dict:
        self.require(access.RECORD_WRITERS, "recording households")
        household = self._household(household_id)
        if relation not in RELATIONS or relation == "head":
            raise InvalidInput("relation", "must be a relation to the head, such as spouse")
        member = self._resident(resident_id)
        if member.get("household_id") != household_id or member.get("relation_to_head") != relation:
            self._apply_change(
                member,
                member["version"],
                {
                    "household_id": household_id,
                    "relation_to_head": relation,
                    "house_id": household["house_id"],
                },
                {"household_id": (member.get("household_id"), household_id)},
                "updated",
            )
        return self.get_household(household_id)

    def _household(self, household_id: str) -> Mapping:
        doc = self.db[store.HOUSEHOLDS].find_one({"_id": household_id})
        return self._visible(doc, "household", household_id)

    def get_household(self, household_id: str) -> dict:
        household = self._household(household_id)
        members = self.db[store.RESIDENTS].find(
            {"household_id": household_id, "status": ACTIVE}, {"name": 1, "relation_to_head": 1}
        )
        return {
            "id": household["_id"],
            "house_id": household["house_id"],
            "grid_code": household["grid_code"],
            "head_resident_id": household["head_resident_id"],
            "members": [
                {"resident_id": m["_id"], "name": m["name"], "relation": m.get("relation_to_head")}
                for m in members
            ],
        }

    def register_entity(self, raw: Mapping) -> dict:
        self.require((*access.RECORD_WRITERS, roles.SYSTEM), "registering legal entities")
        credit = parse_credit_code(str(raw.get("credit_code") or ""))
        grid_code = str(raw.get("grid_code") or "")
        self._grid(grid_code)
        name = str(raw.get("name") or "").strip()
        if not name or len(name) > 200:
            raise InvalidInput("name", "is required (at most 200 characters)")
        entity_type = str(raw.get("type") or "").strip()
        if not entity_type or len(entity_type) > 50:
            raise InvalidInput("type", "is required (at most 50 characters)")
        document = {
            "name": name,
            "type": entity_type,
            "address": str(raw.get("address") or "").strip()[:200] or None,
            "legal_representative": str(raw.get("legal_representative") or "").strip()[:50] or None,
            "grid_code": grid_code,
            "path": path_codes(grid_code),
            "registration_authority": credit.registration_authority,
            "region_code": credit.region_code,
            "updated_at": self.clock(),
        }
        existing = self.db[store.ENTITIES].find_one({"_id": credit.number}, {"grid_code": 1})
        if existing is not None and not access.sees(self.caller, existing["grid_code"]):
            raise Conflict("credit_code: already registered outside your territory")
        self.db[store.ENTITIES].update_one({"_id": credit.number}, {"$set": document}, upsert=True)
        return self.get_entity(credit.number)

    def get_entity(self, credit_code: str) -> dict:
        doc = self.db[store.ENTITIES].find_one({"_id": str(credit_code).strip().upper()})
        return _render_entity(self._visible(doc, "entity", credit_code))

    def list_entities(self, code: str, cursor: str | None = None, limit: int = 50) -> dict:
        level_of(code)
        return self._page(store.ENTITIES, {"path": code}, cursor, limit, _render_entity)


def _render_house(doc: Mapping) -> dict:
    return {
        "id": doc["_id"],
        "building_code": doc["building_code"],
        "grid_code": doc["grid_code"],
        "room": doc["room"],
        "address": doc.get("address"),
        "rental_status": doc["rental_status"],
        "owner_resident_id": doc.get("owner_resident_id"),
        "tenant_ids": doc.get("tenant_ids", []),
    }


def _render_entity(doc: Mapping) -> dict:
    return {
        "credit_code": doc["_id"],
        "name": doc["name"],
        "type": doc["type"],
        "address": doc.get("address"),
        "legal_representative": doc.get("legal_representative"),
        "grid_code": doc["grid_code"],
    }
