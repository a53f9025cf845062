"""The population service's use cases. The nameko service hands each call to one of
these methods; validation and rules come from the pure `domain` package."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common import roles
from gridwork_common.context import CallerContext
from gridwork_common.errors import Conflict, Forbidden, InvalidInput, NotFound, OutsideTerritory
from gridwork_common.events import EventPublisher
from services.population import store, topics
from services.population.domain import access, groups
from services.population.domain.codes import level_of, parent_code, path_codes
from services.population.domain.identity import parse_credit_code
from services.population.domain.masking import mask_id_number, mask_phone
from services.population.domain.residents import (
    ACTIVE,
    DEREGISTERED,
    EDITABLE_FIELDS,
    MOVED_OUT,
    RELATIONS,
    ResidentData,
    changed_fields,
    check_resident,
    normalise_phone,
)
from services.population.domain.territory import (
    check_polygon,
    find_overlaps,
    nodes_from_feature_collection,
)
from services.population.protection import PersonalDataCipher

MAX_PAGE = 200
STAFF_ROLES = ("grid_leader", "supervisor", "full_time", "part_time")
RENTAL_STATUSES = ("owner_occupied", "rented", "vacant")
DEREGISTRATION_REASONS = ("deceased", "emigrated", "duplicate", "other")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _limit(limit) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be an integer from 1 to {MAX_PAGE}")
    return limit


class Population:
    def __init__(
        self,
        db: Database,
        cipher: PersonalDataCipher,
        events: EventPublisher | None,
        caller: CallerContext,
        county_code: str,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.db = db
        self.cipher = cipher
        self.events = events
        self.caller = caller
        self.county_code = county_code
        self.clock = clock

    # ---------------------------------------------------------------- permissions
    def require(self, allowed: tuple[str, ...], action: str) -> None:
        if not self.caller.has_role(*allowed):
            raise Forbidden(f"{action} needs one of the roles: {', '.join(allowed)}")

    def _visible(self, doc: Mapping | None, what: str, key: str) -> Mapping:
        if doc is None or not access.sees(self.caller, doc.get("grid_code") or doc.get("_id")):
            raise NotFound(f"no {what} {key}")
        return doc

    def publish(self, routing_key: str, subject: str, data: dict) -> None:
        if routing_key not in topics.TOPICS:
            raise ValueError(f"{routing_key} is not a documented population topic")
        if self.events is not None:
            self.events.publish(routing_key, subject, data)

    def _page(self, collection: str, query: dict, cursor: str | None, limit: int, render):
        query = access.within_scope(self.caller, query)
        if cursor:
            query = {"$and": [query, {"_id": {"$gt": cursor}}]}
        docs = list(self.db[collection].find(query).sort("_id", 1).limit(_limit(limit)))
        return {
            "items": [render(doc) for doc in docs],
            "next_cursor": docs[-1]["_id"] if len(docs) == limit else None,
        }

    # ---------------------------------------------------------------- territory
    def import_territory(self, collection: Mapping) -> dict:
        self.require(access.ADMINISTRATORS, "importing the territory tree")
        nodes = nodes_from_feature_collection(collection)
        codes = {node.code for node in nodes}
        missing_parents = {
            node.parent for node in nodes if node.parent is not None and node.parent not in codes
        }
        known = {
            doc["_id"]
            for doc in self.db[store.TERRITORY].find({"_id": {"$in": list(missing_parents)}}, {})
        }
        for node in nodes:
            if node.parent in missing_parents - known:
                raise InvalidInput(
                    "features",
                    f"{node.code} needs its parent {node.parent}, "
                    "which is neither in the file nor imported before",
                )
        incoming = {node.code: node.geometry for node in nodes if node.level == "grid"}
        existing = self._existing_grid_polygons(nodes, exclude=set(incoming))
        overlaps = find_overlaps(incoming, existing)
        if overlaps:
            listed = ", ".join(f"{a} and {b}" for a, b in overlaps[:20])
            raise InvalidInput("features", f"grid polygons overlap: {listed}")

        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for node in nodes:
            document = node.document()
            before = self.db[store.TERRITORY].find_one_and_replace(
                {"_id": node.code}, document, upsert=True
            )
            if before is None:
                counts["created"] += 1
            elif before == document:
                counts["unchanged"] += 1
                continue
            else:
                counts["updated"] += 1
            if node.level == "grid":
                self.publish(topics.GRID_UPDATED, node.code, {"code": node.code, "name": node.name})
        return counts

    def _existing_grid_polygons(self, nodes, exclude: set[str]) -> dict:
        counties = {node.path[0] for node in nodes}
        cursor = self.db[store.TERRITORY].find(
            {"path": {"$in": list(counties)}, "level": "grid", "_id": {"$nin": list(exclude)}},
            {"geometry": 1},
        )
        return {doc["_id"]: doc["geometry"] for doc in cursor}

    def add_territory_node(self, code: str, name: str, geometry: Mapping | None = None) -> dict:
        self.require(access.ADMINISTRATORS, "adding territory nodes")
        feature = {
            "type": "Feature",
            "properties": {"code": code, "name": name},
            "geometry": geometry,
        }
        return self.import_territory({"type": "FeatureCollection", "features": [feature]})

    def territory_node(self, code: str) -> dict:
        level_of(code)
        node = self._visible(self.db[store.TERRITORY].find_one({"_id": code}), "territory", code)
        return _render_node(node)

    def territory_children(self, code: str) -> list[dict]:
        self.territory_node(code)
        children = self.db[store.TERRITORY].find({"parent": code}).sort("_id", 1)
        return [_render_node(child, with_geometry=False) for child in children]

    def locate(self, lon: float, lat: float) -> dict:
        for name, value, bound in (("lon", lon, 180), ("lat", lat, 90)):
            if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > bound:
                raise InvalidInput(name, f"must be a number from -{bound} to {bound}")
        point = {"type": "Point", "coordinates": [float(lon), float(lat)]}
        grid = self.db[store.TERRITORY].find_one(
            {
                "level": "grid",
                "path": self.county_code,
                "geometry": {"$geoIntersects": {"$geometry": point}},
            },
            {"geometry": 0},
        )
        if grid is None:
            raise OutsideTerritory(
                "location",
                f"({lon}, {lat}) is outside the county {self.county_code}: no grid contains it",
            )
        names = {
            doc["_id"]: doc["name"]
            for doc in self.db[store.TERRITORY].find({"_id": {"$in": grid["path"]}}, {"name": 1})
        }
        return {
            "grid": {"code": grid["_id"], "name": grid["name"]},
            "path": [
                {"code": code, "name": names.get(code), "level": level_of(code)}
                for code in grid["path"]
            ],
        }

    def set_grid_staff(self, grid_code: str, staff: list[Mapping]) -> list[dict]:
        """Replace a grid's roster: one grid leader, one supervisor, one full-time grid
        worker and any number of part-time social grid workers ("1+1+N")."""
        self.require(access.ROSTER_MANAGERS, "setting a grid's staff")
        self._grid(grid_code)
        if not isinstance(staff, list):
            raise InvalidInput("staff", "must be a list")
        members = []
        for index, member in enumerate(staff):
            where = f"staff[{index}]"
            if not isinstance(member, Mapping):
                raise InvalidInput(where, "must be an object")
            role = member.get("role")
            if role not in STAFF_ROLES:
                raise InvalidInput(f"{where}.role", f"must be one of {', '.join(STAFF_ROLES)}")
            person_id = str(member.get("person_id") or "").strip()
            name = str(member.get("name") or "").strip()
            if not person_id:
                raise InvalidInput(f"{where}.person_id", "is required")
            if not name:
                raise InvalidInput(f"{where}.name", "is required")
            members.append({"person_id": person_id, "name": name, "role": role})
        for role in ("grid_leader", "supervisor", "full_time"):
            if sum(member["role"] == role for member in members) > 1:
                raise InvalidInput("staff", f"a grid has at most one {role}")
        pairs = [(member["person_id"], member["role"]) for member in members]
        if len(set(pairs)) != len(pairs):
            raise InvalidInput("staff", "a person is listed twice in the same role")
        documents = [
            {"_id": f"{grid_code}:{m['role']}:{m['person_id']}", "grid_code": grid_code, **m}
            for m in members
        ]
        with self.db.client.start_session() as session, session.start_transaction():
            self.db[store.STAFF].delete_many({"grid_code": grid_code}, session=session)
            if documents:
                self.db[store.STAFF].insert_many(documents, session=session)
        self.publish(topics.GRID_UPDATED, grid_code, {"code": grid_code, "staff": len(documents)})
        return self.grid_staff(grid_code)

    def grid_staff(self, grid_code: str) -> list[dict]:
        self._grid(grid_code)
        order = {role: index for index, role in enumerate(STAFF_ROLES)}
        staff = self.db[store.STAFF].find({"grid_code": grid_code}, {"_id": 0, "grid_code": 0})
        return sorted(staff, key=lambda m: (order[m["role"]], m["person_id"]))

    def grids_served_by(self, person_id: str) -> list[dict]:
        rows = self.db[store.STAFF].find({"person_id": person_id}, {"_id": 0})
        return [row for row in rows if access.sees(self.caller, row["grid_code"])]

    def _grid(self, grid_code: str) -> Mapping:
        if not isinstance(grid_code, str) or level_of(grid_code, "grid_code") != "grid":
            raise InvalidInput("grid_code", "must be a 15-digit grid code")
        return self._visible(
            self.db[store.TERRITORY].find_one({"_id": grid_code}, {"geometry": 0}),
            "grid",
            grid_code,
        )

    def statistics(self, code: str) -> dict:
        """Counts over the subtree of a territory node."""
        self.territory_node(code)
        by_residence = {
            row["_id"]: row["count"]
            for row in self.db[store.RESIDENTS].aggregate(
                [
                    {"$match": {"path": code, "status": ACTIVE}},
                    {"$group": {"_id": "$residence_type", "count": {"$sum": 1}}},
                ]
            )
        }
        group_rows = self.db[store.MEMBERSHIPS].aggregate(
            [
                {"$match": {"path": code, "active": True}},
                {
                    "$group": {
                        "_id": {"group": "$group", "risk": "$risk_level"},
                        "count": {"$sum": 1},
                    }
                },
            ]
        )
        by_group: dict[str, dict[str, int]] = {}
        for row in group_rows:
            by_group.setdefault(row["_id"]["group"], {})[row["_id"]["risk"]] = row["count"]
        statistics = {
            "code": code,
            "grids": self.db[store.TERRITORY].count_documents({"path": code, "level": "grid"}),
            "households": self.db[store.HOUSEHOLDS].count_documents({"path": code}),
            "residents": sum(by_residence.values()),
            "residents_by_residence_type": by_residence,
        }
        if self.caller.has_role(*access.GROUP_READERS):
            statistics["group_members"] = by_group
        return statistics

    # ---------------------------------------------------------------- residents
    def register_resident(self, raw: Mapping) -> dict:
        self.require((*access.RECORD_WRITERS, roles.SYSTEM), "registering residents")
        record = self._valid_resident(raw)
        self._grid(record.grid_code)
        self._check_links(record)
        document = self.resident_document(record)
        try:
            self.db[store.RESIDENTS].insert_one(document)
        except DuplicateKeyError:
            existing = self.db[store.RESIDENTS].find_one({"id_index": document["id_index"]})
            if existing is not None and _same_record(existing, document):
                return self._render_resident(existing)  # a retried registration
            if existing is not None and existing["status"] == MOVED_OUT:
                return self._move_back_in(existing, document)
            raise Conflict(
                "id_number: a resident with this ID number is already registered"
                + (
                    f" ({existing['_id']})"
                    if existing and access.sees(self.caller, existing["grid_code"])
                    else ""
                )
            ) from None
        self._history(document["_id"], "registered", {"grid_code": (None, record.grid_code)})
        self.publish(topics.RESIDENT_REGISTERED, record.grid_code, _resident_event(document))
        return self._render_resident(document)

    def _move_back_in(self, existing: Mapping, document: Mapping) -> dict:
        """Someone who moved out of the county registers again: the same record, active
        again in its new grid, with the move in its history."""
        kept = ("_id", "created_at", "created_by", "version", "id_cipher")
        update = {key: value for key, value in document.items() if key not in kept}
        update["moved_to"] = None
        diff = {
            "status": (existing["status"], ACTIVE),
            "grid_code": (existing["grid_code"], document["grid_code"]),
        }
        return self._apply_change(existing, existing["version"], update, diff, "moved_in")

    def _valid_resident(self, raw: Mapping) -> ResidentData:
        if not isinstance(raw, Mapping):
            raise InvalidInput("resident", "must be an object")
        record, problems = check_resident(raw, today=self.clock().date())
        if problems:
            raise InvalidInput(problems[0].field, problems[0].problem)
        return record

    def _check_links(self, record: ResidentData) -> None:
        if record.house_id:
            house = self.db[store.HOUSES].find_one({"_id": record.house_id}, {"grid_code": 1})
            if house is None or house["grid_code"] != record.grid_code:
                raise InvalidInput("house_id", "no such house in this grid")
        if record.household_id:
            household = self.db[store.HOUSEHOLDS].find_one({"_id": record.household_id})
            if household is None or household["grid_code"] != record.grid_code:
                raise InvalidInput("household_id", "no such household in this grid")

    def resident_document(self, record: ResidentData, resident_id: str | None = None) -> dict:
        now = self.clock()
        values = record.as_dict()
        id_number, phone = values.pop("id_number"), values.pop("phone")
        birth = values.pop("birth_date")
        return {
            "_id": resident_id or uuid.uuid4().hex,
            **values,
            "birth_date": birth.isoformat() if isinstance(birth, date) else None,
            **self.protected_fields(id_number, phone),
            "path": path_codes(record.grid_code),
            "status": ACTIVE,
            "version": 1,
            "created_at": now,
            "created_by": self.caller.user_id,
            "updated_at": now,
            "updated_by": self.caller.user_id,
        }

    def protected_fields(self, id_number: str, phone: str | None) -> dict:
        fields = {
            "id_cipher": self.cipher.encrypt(id_number, "id_number"),
            "id_index": self.cipher.blind_index(id_number, "id_number"),
            "id_masked": mask_id_number(id_number),
        }
        if phone:
            fields.update(
                phone_cipher=self.cipher.encrypt(phone, "phone"),
                phone_index=self.cipher.blind_index(phone, "phone"),
                phone_masked=mask_phone(phone),
            )
        return fields

    def _render_resident(self, doc: Mapping, revealed: Mapping | None = None) -> dict:
        revealed = revealed or {}
        rendered = {
            "id": doc["_id"],
            "id_type": doc["id_type"],
            "id_number": revealed.get("id_number", doc["id_masked"]),
            "nationality": doc["nationality"],
            "name": doc["name"],
            "gender": doc.get("gender"),
            "birth_date": doc.get("birth_date"),
            "phone": revealed.get("phone", doc.get("phone_masked")),
            **{
                name: doc.get(name)
                for name in (
                    "ethnicity",
                    "household_registration_place",
                    "residence_type",
                    "grid_code",
                    "house_id",
                    "household_id",
                    "relation_to_head",
                    "employment",
                    "notes",
                    "status",
                    "version",
                )
            },
            "created_at": _iso(doc.get("created_at")),
            "updated_at": _iso(doc.get("updated_at")),
        }
        if self.caller.has_role(*access.GROUP_READERS):
            rendered["groups"] = [
                _render_membership(m)
                for m in self.db[store.MEMBERSHIPS].find(
                    {"resident_id": doc["_id"], "active": True}
                )
            ]
        return rendered

    def _resident(self, resident_id: str) -> Mapping:
        if not isinstance(resident_id, str):
            raise InvalidInput("resident_id", "must be a string")
        doc = self.db[store.RESIDENTS].find_one({"_id": resident_id})
        return self._visible(doc, "resident", resident_id)

    def get_resident(
        self, resident_id: str, reveal: list[str] | None = None, purpose: str | None = None
    ) -> dict:
        doc = self._resident(resident_id)
        return self._render_resident(doc, self._reveal(doc, reveal or [], purpose))

    def _reveal(self, doc: Mapping, fields: list[str], purpose: str | None) -> dict:
        if not fields:
            return {}
        unknown = [name for name in fields if name not in ("id_number", "phone")]
        if unknown:
            raise InvalidInput("reveal", "only id_number and phone can be revealed")
        self.require(access.REVEALERS, "revealing personal data")
        if not isinstance(purpose, str) or len(purpose.strip()) < access.MIN_PURPOSE_LENGTH:
            raise InvalidInput("purpose", "state why the full value is needed")
        revealed = {}
        for name in fields:
            cipher_field = "id_cipher" if name == "id_number" else "phone_cipher"
            if doc.get(cipher_field):
                revealed[name] = self.cipher.decrypt(doc[cipher_field], name)
        self.db[store.ACCESS_AUDIT].insert_one(
            {
                "at": self.clock(),
                "actor": self.caller.user_id,
                "roles": list(self.caller.roles),
                "resident_id": doc["_id"],
                "grid_code": doc["grid_code"],
                "path": doc["path"],
                "fields": sorted(revealed),
                "purpose": purpose.strip(),
                "request_id": self.caller.request_id,
            }
        )
        return revealed

    def find_resident(self, id_number: str | None = None, phone: str | None = None) -> list[dict]:
        if bool(id_number) == bool(phone):
            raise InvalidInput("id_number", "give either id_number or phone")
        if id_number:
            number = str(id_number).strip().upper()
            query = {"id_index": self.cipher.blind_index(number, "id_number")}
        else:
            query = {"phone_index": self.cipher.blind_index(normalise_phone(phone), "phone")}
        query.update(access.scope_filter(self.caller))
        return [self._render_resident(doc) for doc in self.db[store.RESIDENTS].find(query)]

    def list_residents(
        self, code: str, cursor: str | None = None, limit: int = 50, status: str = ACTIVE
    ) -> dict:
        level_of(code)
        return self._page(
            store.RESIDENTS,
            {"path": code, "status": status},
            cursor,
            limit,
            self._render_resident,
        )

    def update_resident(self, resident_id: str, changes: Mapping, expected_version: int) -> dict:
        self.require(access.RECORD_WRITERS, "changing residents")
        doc = self._resident(resident_id)
        if not isinstance(changes, Mapping) or not changes:
            raise InvalidInput("changes", "must be a non-empty object")
        not_editable = sorted(set(changes) - set(EDITABLE_FIELDS))
        if not_editable:
            raise InvalidInput(not_editable[0], "cannot be changed here")
        current = self._current_input(doc)
        record = self._valid_resident({**current, **changes})
        new_values = {name: getattr(record, name) for name in EDITABLE_FIELDS}
        diff = changed_fields({**current, "phone": current.get("phone")}, new_values)
        if not diff:
            return self._render_resident(doc)
        update = {name: new for name, (_, new) in diff.items() if name != "phone"}
        if "phone" in diff:
            protected = self.protected_fields("", record.phone) if record.phone else {}
            update.update({k: v for k, v in protected.items() if k.startswith("phone")})
        return self._apply_change(doc, expected_version, update, diff, "updated")

    def _current_input(self, doc: Mapping) -> dict:
        values = {name: doc.get(name) for name in EDITABLE_FIELDS if name != "phone"}
        values.update(
            id_type=doc["id_type"],
            id_number=self.cipher.decrypt(doc["id_cipher"], "id_number"),
            nationality=doc["nationality"],
            grid_code=doc["grid_code"],
            house_id=doc.get("house_id"),
            household_id=doc.get("household_id"),
            relation_to_head=doc.get("relation_to_head"),
        )
        if doc.get("phone_cipher"):
            values["phone"] = self.cipher.decrypt(doc["phone_cipher"], "phone")
        return values

    def _apply_change(
        self,
        doc,
        expected_version,
        update: dict,
        diff: dict,
        action: str,
        unset: tuple[str, ...] = (),
    ) -> dict:
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise InvalidInput("expected_version", "must be the version you read")
        now = self.clock()
        operation = {
            "$set": {**update, "updated_at": now, "updated_by": self.caller.user_id},
            "$inc": {"version": 1},
        }
        if unset:
            operation["$unset"] = {name: "" for name in unset}
        after = self.db[store.RESIDENTS].find_one_and_update(
            {"_id": doc["_id"], "version": expected_version},
            operation,
            return_document=ReturnDocument.AFTER,
        )
        if after is None:
            raise Conflict(
                f"expected_version: the resident is at version {doc['version']}, "
                f"not {expected_version}; reload and try again"
            )
        self._history(doc["_id"], action, diff)
        moved = action in ("moved", "moved_out", "moved_in")
        self.publish(
            topics.RESIDENT_MOVED if moved else topics.RESIDENT_UPDATED,
            after["grid_code"],
            {**_resident_event(after), "action": action, "changed": sorted(diff)},
        )
        return self._render_resident(after)

    def _history(self, resident_id: str, action: str, diff: Mapping) -> None:
        sensitive = {"phone", "id_number"}
        self.db[store.RESIDENT_HISTORY].insert_one(
            {
                "resident_id": resident_id,
                "at": self.clock(),
                "by": self.caller.user_id,
                "roles": list(self.caller.roles),
                "request_id": self.caller.request_id,
                "action": action,
                # Personal numbers are never copied into history in clear: only "changed".
                "changes": {
                    name: ({"changed": True} if name in sensitive else {"from": old, "to": new})
                    for name, (old, new) in diff.items()
                },
            }
        )

    def resident_history(self, resident_id: str) -> list[dict]:
        self._resident(resident_id)
        rows = self.db[store.RESIDENT_HISTORY].find({"resident_id": resident_id}).sort("at", 1)
        return [
            {
                "at": _iso(row["at"]),
                "by": row["by"],
                "action": row["action"],
                "changes": row["changes"],
            }
            for row in rows
        ]

    def move_resident(
        self,
        resident_id: str,
        expected_version: int,
        to_grid_code: str | None = None,
        to_house_id: str | None = None,
        out_of_county: str | None = None,
    ) -> dict:
        """Move within the county (to a grid, optionally a house) or out of it."""
        self.require(access.RECORD_WRITERS, "moving residents")
        doc = self._resident(resident_id)
        if doc["status"] != ACTIVE:
            raise Conflict(f"status: the resident is {doc['status']}")
        if bool(to_grid_code) == bool(out_of_county):
            raise InvalidInput("to_grid_code", "give either to_grid_code or out_of_county")
        if out_of_county:
            destination = str(out_of_county).strip()[:200]
            diff = {"status": (ACTIVE, MOVED_OUT), "moved_to": (None, destination)}
            update = {"status": MOVED_OUT, "moved_to": destination}
            return self._apply_change(doc, expected_version, update, diff, "moved_out")
        self._grid(to_grid_code)
        if to_house_id:
            house = self.db[store.HOUSES].find_one({"_id": to_house_id}, {"grid_code": 1})
            if house is None or house["grid_code"] != to_grid_code:
                raise InvalidInput("to_house_id", "no such house in that grid")
        diff = {
            "grid_code": (doc["grid_code"], to_grid_code),
            "house_id": (doc.get("house_id"), to_house_id),
        }
        update = {
            "grid_code": to_grid_code,
            "path": path_codes(to_grid_code),
            "house_id": to_house_id,
            "household_id": None,
            "relation_to_head": None,
        }
        return self._apply_change(doc, expected_version, update, diff, "moved")

    def deregister_resident(self, resident_id: str, expected_version: int, reason: str) -> dict:
        self.require(access.RECORD_WRITERS, "deregistering residents")
        if reason not in DEREGISTRATION_REASONS:
            raise InvalidInput("reason", f"must be one of {', '.join(DEREGISTRATION_REASONS)}")
        doc = self._resident(resident_id)
        if doc["status"] == DEREGISTERED:
            raise Conflict("status: the resident is already deregistered")
        diff = {"status": (doc["status"], DEREGISTERED), "deregistration_reason": (None, reason)}
        update = {"status": DEREGISTERED, "deregistration_reason": reason}
        self._apply_change(doc, expected_version, update, diff, "deregistered")
        for membership in self.db[store.MEMBERSHIPS].find(
            {"resident_id": resident_id, "active": True}, {"_id": 1}
        ):
            self._clear_membership(membership["_id"], f"deregistered: {reason}")
        return self._render_resident(self._resident(resident_id))

    # ---------------------------------------------------------------- houses, households
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

    # ---------------------------------------------------------------- legal entities
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

    # ---------------------------------------------------------------- groups, visits
    def flag_group(
        self,
        resident_id: str,
        group: str,
        risk_level: str,
        responsible_worker_id: str,
        note: str | None = None,
    ) -> dict:
        self.require(access.GROUP_WRITERS, "flagging group membership")
        kind = groups.group_kind(group)
        groups.check_risk_level(risk_level)
        if not responsible_worker_id:
            raise InvalidInput("responsible_worker_id", "is required")
        resident = self._resident(resident_id)
        if resident["status"] != ACTIVE:
            raise Conflict(f"status: the resident is {resident['status']}")
        now = self.clock()
        membership = {
            "_id": uuid.uuid4().hex,
            "resident_id": resident_id,
            "group": group,
            "kind": kind,
            "risk_level": risk_level,
            "responsible_worker_id": str(responsible_worker_id),
            "grid_code": resident["grid_code"],
            "path": resident["path"],
            "active": True,
            "flagged_at": now,
            "flagged_by": self.caller.user_id,
            "note": (note or "").strip()[:500] or None,
        }
        try:
            self.db[store.MEMBERSHIPS].insert_one(membership)
        except DuplicateKeyError:
            existing = self.db[store.MEMBERSHIPS].find_one(
                {"resident_id": resident_id, "group": group, "active": True}
            )
            changes = {
                "risk_level": risk_level,
                "responsible_worker_id": str(responsible_worker_id),
            }
            if all(existing[key] == value for key, value in changes.items()):
                return _render_membership(existing)  # a retried request
            self.db[store.MEMBERSHIPS].update_one({"_id": existing["_id"]}, {"$set": changes})
            membership = {**existing, **changes}
        self.publish(
            topics.GROUP_FLAGGED,
            membership["grid_code"],
            {
                "membership_id": membership["_id"],
                "resident_id": resident_id,
                "group": group,
                "kind": kind,
                "risk_level": risk_level,
                "responsible_worker_id": membership["responsible_worker_id"],
            },
        )
        return _render_membership(membership)

    def clear_group(self, membership_id: str, reason: str) -> dict:
        self.require(access.GROUP_WRITERS, "clearing group membership")
        membership = self._membership(membership_id)
        if not reason or not str(reason).strip():
            raise InvalidInput("reason", "is required")
        if not membership["active"]:
            return _render_membership(membership)
        return _render_membership(self._clear_membership(membership_id, str(reason).strip()))

    def _clear_membership(self, membership_id: str, reason: str) -> Mapping:
        updated = self.db[store.MEMBERSHIPS].find_one_and_update(
            {"_id": membership_id, "active": True},
            {
                "$set": {
                    "active": False,
                    "cleared_at": self.clock(),
                    "cleared_by": self.caller.user_id,
                    "cleared_reason": reason[:500],
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:  # cleared meanwhile by another request: nothing to announce
            return self.db[store.MEMBERSHIPS].find_one({"_id": membership_id})
        self.publish(
            topics.GROUP_CLEARED,
            updated["grid_code"],
            {
                "membership_id": membership_id,
                "resident_id": updated["resident_id"],
                "group": updated["group"],
            },
        )
        return updated

    def _membership(self, membership_id: str) -> Mapping:
        self.require(access.GROUP_READERS, "reading group membership")
        doc = self.db[store.MEMBERSHIPS].find_one({"_id": membership_id})
        return self._visible(doc, "membership", membership_id)

    def list_group_members(
        self,
        code: str,
        group: str | None = None,
        risk_level: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict:
        self.require(access.GROUP_READERS, "reading group membership")
        level_of(code)
        query: dict = {"path": code, "active": True}
        if group:
            groups.group_kind(group)
            query["group"] = group
        if risk_level:
            query["risk_level"] = groups.check_risk_level(risk_level)
        return self._page(store.MEMBERSHIPS, query, cursor, limit, _render_membership)

    def set_visit_rule(self, group: str, risk_level: str, visits_per_month: int) -> dict:
        self.require(access.ADMINISTRATORS, "setting visit rules")
        groups.group_kind(group)
        groups.check_risk_level(risk_level)
        if not isinstance(visits_per_month, int) or not 0 <= visits_per_month <= 31:
            raise InvalidInput("visits_per_month", "must be an integer from 0 to 31")
        key = groups.rule_key(group, risk_level)
        self.db[store.VISIT_RULES].update_one(
            {"_id": key}, {"$set": {"visits_per_month": visits_per_month}}, upsert=True
        )
        return self.visit_rules()

    def visit_rules(self) -> dict[str, int]:
        rules = groups.default_visit_rules()
        rules.update(
            {doc["_id"]: doc["visits_per_month"] for doc in self.db[store.VISIT_RULES].find()}
        )
        return rules

    def record_visit(self, raw: Mapping) -> dict:
        self.require(access.VISITORS, "recording visits")
        membership = self._membership(str(raw.get("membership_id") or ""))
        if not membership["active"]:
            raise Conflict("membership_id: the membership was cleared")
        at = raw.get("at")
        try:
            visited_at = datetime.fromisoformat(at) if isinstance(at, str) else None
        except ValueError:
            visited_at = None
        if visited_at is None or visited_at.tzinfo is None:
            raise InvalidInput("at", "must be an ISO 8601 time with a UTC offset")
        visited_at = visited_at.astimezone(UTC)
        if visited_at > self.clock():
            raise InvalidInput("at", "is in the future")
        location = raw.get("location")
        lon, lat = _point(location)
        media_ids = raw.get("media_ids") or []
        if not isinstance(media_ids, list) or not all(isinstance(m, str) for m in media_ids):
            raise InvalidInput("media_ids", "must be a list of media ids")
        visit_id = str(raw.get("visit_id") or uuid.uuid4().hex)
        document = {
            "_id": visit_id,
            "membership_id": membership["_id"],
            "resident_id": membership["resident_id"],
            "group": membership["group"],
            "risk_level": membership["risk_level"],
            "worker_id": self.caller.user_id,
            "at": visited_at,
            "period": groups.period_of(visited_at),
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "notes": str(raw.get("notes") or "").strip()[:2000] or None,
            "media_ids": media_ids,
            "grid_code": membership["grid_code"],
            "path": membership["path"],
            "recorded_at": self.clock(),
        }
        try:
            self.db[store.VISITS].insert_one(document)
        except DuplicateKeyError:  # the client's visit_id: a retried upload
            return _render_visit(self.db[store.VISITS].find_one({"_id": visit_id}))
        self.publish(
            topics.VISIT_RECORDED,
            membership["grid_code"],
            {
                "visit_id": visit_id,
                "membership_id": membership["_id"],
                "resident_id": membership["resident_id"],
                "group": membership["group"],
                "risk_level": membership["risk_level"],
                "worker_id": self.caller.user_id,
                "at": visited_at.isoformat(),
                "period": document["period"],
                "location": document["location"],
                "media_ids": media_ids,
            },
        )
        return _render_visit(document)

    def visits_of(self, membership_id: str) -> list[dict]:
        self._membership(membership_id)
        rows = self.db[store.VISITS].find({"membership_id": membership_id}).sort("at", -1)
        return [_render_visit(row) for row in rows]

    def visit_worklist(self, worker_id: str | None = None, period: str | None = None) -> dict:
        """A grid worker's visits due this period and the obligations already missed."""
        self.require(access.GROUP_READERS, "reading visit worklists")
        worker_id = worker_id or self.caller.user_id
        now = self.clock()
        period = period or groups.period_of(now)
        rules = self.visit_rules()
        memberships = list(
            self.db[store.MEMBERSHIPS].find(
                {
                    "responsible_worker_id": worker_id,
                    "active": True,
                    **access.scope_filter(self.caller),
                }
            )
        )
        previous = groups.previous_periods(groups.period_bounds(period)[0], 1)[0]
        done = self._visit_counts([m["_id"] for m in memberships], [period, previous])
        due, overdue = [], []
        for membership in memberships:
            required = groups.required_visits(rules, membership["group"], membership["risk_level"])
            current = groups.VisitObligation(
                membership["_id"], period, required, done.get((membership["_id"], period), 0)
            )
            if not current.met:
                due.append(
                    {
                        **_render_membership(membership),
                        "required": required,
                        "done": current.done,
                        "remaining": current.remaining,
                    }
                )
            last = groups.VisitObligation(
                membership["_id"], previous, required, done.get((membership["_id"], previous), 0)
            )
            if groups.obligation_applies(membership["flagged_at"], previous) and not last.met:
                overdue.append(
                    {
                        **_render_membership(membership),
                        "period": previous,
                        "required": required,
                        "done": last.done,
                        "missing": last.remaining,
                    }
                )
        return {"worker_id": worker_id, "period": period, "due": due, "overdue": overdue}

    def _visit_counts(self, membership_ids: list[str], periods: list[str]) -> dict:
        rows = self.db[store.VISITS].aggregate(
            [
                {"$match": {"membership_id": {"$in": membership_ids}, "period": {"$in": periods}}},
                {"$group": {"_id": {"m": "$membership_id", "p": "$period"}, "n": {"$sum": 1}}},
            ]
        )
        return {(row["_id"]["m"], row["_id"]["p"]): row["n"] for row in rows}

    def publish_overdue_visits(self, periods_back: int = 3) -> int:
        """Publish `visit.overdue` once per membership and missed month (the notice
        document's key makes a second run, or a second replica, publish nothing)."""
        now = self.clock()
        rules = self.visit_rules()
        published = 0
        for period in groups.previous_periods(now, periods_back):
            start, _ = groups.period_bounds(period)
            memberships = list(
                self.db[store.MEMBERSHIPS].find(
                    {
                        "flagged_at": {"$lte": start},
                        "$or": [{"active": True}, {"cleared_at": {"$gt": start}}],
                    }
                )
            )
            done = self._visit_counts([m["_id"] for m in memberships], [period])
            for membership in memberships:
                required = groups.required_visits(
                    rules, membership["group"], membership["risk_level"]
                )
                count = done.get((membership["_id"], period), 0)
                if count >= required:
                    continue
                notice = {"_id": f"{membership['_id']}:{period}", "at": now}
                try:
                    self.db[store.OVERDUE_NOTICES].insert_one(notice)
                except DuplicateKeyError:
                    continue
                self.publish(
                    topics.VISIT_OVERDUE,
                    membership["grid_code"],
                    {
                        "membership_id": membership["_id"],
                        "resident_id": membership["resident_id"],
                        "group": membership["group"],
                        "risk_level": membership["risk_level"],
                        "responsible_worker_id": membership["responsible_worker_id"],
                        "period": period,
                        "required": required,
                        "done": count,
                    },
                )
                published += 1
        return published

    # ---------------------------------------------------------------- access audit
    def access_audit(
        self,
        resident_id: str | None = None,
        actor: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict:
        self.require(access.AUDITORS, "reading the access audit")
        query: dict = {**access.scope_filter(self.caller)}
        if resident_id:
            query["resident_id"] = resident_id
        if actor:
            query["actor"] = actor
        if cursor:
            query["_id"] = {"$lt": _object_id(cursor)}
        rows = list(self.db[store.ACCESS_AUDIT].find(query).sort("_id", -1).limit(_limit(limit)))
        return {
            "items": [
                {
                    "id": str(row["_id"]),
                    "at": _iso(row["at"]),
                    "actor": row["actor"],
                    "roles": row["roles"],
                    "resident_id": row["resident_id"],
                    "fields": row["fields"],
                    "purpose": row["purpose"],
                    "request_id": row.get("request_id"),
                }
                for row in rows
            ],
            "next_cursor": str(rows[-1]["_id"]) if len(rows) == limit else None,
        }


def _object_id(cursor: str):
    from bson import ObjectId
    from bson.errors import InvalidId

    try:
        return ObjectId(cursor)
    except InvalidId:
        raise InvalidInput("cursor", "is not a cursor this list returned") from None


def _point(location) -> tuple[float, float]:
    if (
        not isinstance(location, Mapping)
        or location.get("type") != "Point"
        or not isinstance(location.get("coordinates"), list | tuple)
        or len(location["coordinates"]) != 2
    ):
        raise InvalidInput("location", "must be a GeoJSON Point [longitude, latitude]")
    lon, lat = location["coordinates"]
    for name, value, bound in (("longitude", lon, 180), ("latitude", lat, 90)):
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > bound:
            raise InvalidInput("location", f"{name} must be a number from -{bound} to {bound}")
    return float(lon), float(lat)


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _same_record(existing: Mapping, new: Mapping) -> bool:
    keys = ("name", "grid_code", "residence_type", "phone_index", "house_id", "household_id")
    return existing.get("status") == ACTIVE and all(existing.get(k) == new.get(k) for k in keys)


def _resident_event(doc: Mapping) -> dict:
    # Never the ID or phone number, not even masked: subscribers get the record id.
    return {
        "resident_id": doc["_id"],
        "grid_code": doc["grid_code"],
        "residence_type": doc["residence_type"],
        "status": doc["status"],
        "version": doc["version"],
    }


def _render_node(doc: Mapping, with_geometry: bool = True) -> dict:
    rendered = {
        "code": doc["_id"],
        "name": doc["name"],
        "level": doc["level"],
        "parent": doc.get("parent"),
        "path": doc["path"],
    }
    if with_geometry and doc.get("geometry") is not None:
        rendered["geometry"] = doc["geometry"]
    return rendered


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


def _render_membership(doc: Mapping) -> dict:
    return {
        "id": doc["_id"],
        "resident_id": doc["resident_id"],
        "group": doc["group"],
        "kind": doc["kind"],
        "risk_level": doc["risk_level"],
        "responsible_worker_id": doc["responsible_worker_id"],
        "grid_code": doc["grid_code"],
        "active": doc["active"],
        "flagged_at": _iso(doc.get("flagged_at")),
        "cleared_at": _iso(doc.get("cleared_at")),
    }


def _render_visit(doc: Mapping) -> dict:
    return {
        "id": doc["_id"],
        "membership_id": doc["membership_id"],
        "resident_id": doc["resident_id"],
        "worker_id": doc["worker_id"],
        "at": _iso(doc["at"]),
        "period": doc["period"],
        "location": doc["location"],
        "notes": doc.get("notes"),
        "media_ids": doc.get("media_ids", []),
    }


__all__ = ["Population", "check_polygon"]
