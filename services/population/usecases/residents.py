"""Residents: registration, reading (masked, or revealed with a purpose and audited),
changes with optimistic versions, moves, deregistration and history."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import date

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from gridwork_common import roles
from gridwork_common.clock import china_today
from gridwork_common.errors import Conflict, InvalidInput
from services.population import store, topics
from services.population.domain import access
from services.population.domain.codes import level_of, path_codes
from services.population.domain.masking import mask_id_number, mask_phone
from services.population.domain.residents import (
    ACTIVE,
    DEREGISTERED,
    EDITABLE_FIELDS,
    MOVED_OUT,
    ResidentData,
    changed_fields,
    check_resident,
    normalise_phone,
)
from services.population.usecases.base import UseCases, iso_time
from services.population.usecases.groups import render_membership

DEREGISTRATION_REASONS = ("deceased", "emigrated", "duplicate", "other")


class ResidentUseCases(UseCases):
    def register_resident(self, raw: Mapping) -> dict:
        self.require((*access.RECORD_WRITERS, roles.SYSTEM), "registering residents")
        record = self._valid_resident(raw)
        self._grid(record.grid_code)
        self._check_links(record)
        document = self.resident_document(record)
        try:
            if self.cipher.rotating:  # the unique index sees only the current key's index
                self._refuse_indexed_under_previous_key(record.id_number)

            def register(session):
                self.db[store.RESIDENTS].insert_one(document, session=session)
                self._history(
                    document["_id"],
                    "registered",
                    {"grid_code": (None, record.grid_code)},
                    session,
                )
                self.publish(
                    topics.RESIDENT_REGISTERED, record.grid_code, _resident_event(document)
                )

            self.changes(register)
        except DuplicateKeyError:
            existing = self.db[store.RESIDENTS].find_one(
                {"id_index": {"$in": self.cipher.blind_indexes(record.id_number, "id_number")}}
            )
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
        return self._render_resident(document)

    def _refuse_indexed_under_previous_key(self, id_number: str) -> None:
        previous = self.cipher.blind_indexes(id_number, "id_number")[1:]
        if previous and self.db[store.RESIDENTS].find_one({"id_index": {"$in": previous}}):
            raise DuplicateKeyError("id_index under a previous key")

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
        record, problems = check_resident(raw, today=china_today(self.clock))
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
            "path": list(_grid_path(record.grid_code)),
            "status": ACTIVE,
            "version": 1,
            "created_at": now,
            "created_by": self.caller.user_id,
            "updated_at": now,
            "updated_by": self.caller.user_id,
        }

    def protected_fields(self, id_number: str, phone: str | None) -> dict:
        return {
            "id_cipher": self.cipher.encrypt(id_number, "id_number"),
            "id_index": self.cipher.blind_index(id_number, "id_number"),
            "id_masked": mask_id_number(id_number),
            **self.phone_fields(phone),
            "pii_keys": self.cipher.key_ids,  # what the rekey job looks for
        }

    def phone_fields(self, phone: str | None) -> dict:
        """The stored forms of a phone number (none at all for no number)."""
        if not phone:
            return {}
        return {
            "phone_cipher": self.cipher.encrypt(phone, "phone"),
            "phone_index": self.cipher.blind_index(phone, "phone"),
            "phone_masked": mask_phone(phone),
        }

    def _render_residents(self, docs: list[Mapping]) -> list[dict]:
        """Residents of a page or a search, their group memberships read in one query for
        all of them (not one per resident)."""
        if not self.caller.has_role(*access.GROUP_READERS):
            return [self._render_resident(doc) for doc in docs]
        memberships: dict[str, list[dict]] = {doc["_id"]: [] for doc in docs}
        if memberships:
            for membership in (
                self.db[store.MEMBERSHIPS]
                .find({"resident_id": {"$in": list(memberships)}, "active": True})
                .sort([("resident_id", 1), ("group", 1)])
            ):
                memberships[membership["resident_id"]].append(render_membership(membership))
        return [self._render_resident(doc, groups=memberships[doc["_id"]]) for doc in docs]

    def _render_resident(
        self, doc: Mapping, revealed: Mapping | None = None, groups: list[dict] | None = None
    ) -> dict:
        """`groups`: the resident's memberships when the caller already read them."""
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
            "created_at": iso_time(doc.get("created_at")),
            "updated_at": iso_time(doc.get("updated_at")),
        }
        if groups is not None:
            rendered["groups"] = groups
        elif self.caller.has_role(*access.GROUP_READERS):
            rendered["groups"] = [
                render_membership(m)
                for m in self.db[store.MEMBERSHIPS]
                .find({"resident_id": doc["_id"], "active": True})
                .sort("group", 1)
            ]
        return rendered

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
            query = {"id_index": {"$in": self.cipher.blind_indexes(number, "id_number")}}
        else:
            indexes = self.cipher.blind_indexes(normalise_phone(phone), "phone")
            query = {"phone_index": {"$in": indexes}}
        query.update(access.scope_filter(self.caller))
        return self._render_residents(list(self.db[store.RESIDENTS].find(query)))

    def list_residents(
        self, code: str, cursor: str | None = None, limit: int = 50, status: str = ACTIVE
    ) -> dict:
        level_of(code)
        return self._page(
            store.RESIDENTS,
            {"path": code, "status": status},
            cursor,
            limit,
            render_all=self._render_residents,
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
        unset: tuple[str, ...] = ()
        if "phone" in diff:
            update.update(self.phone_fields(record.phone))
            if not record.phone:  # the number was removed
                unset = ("phone_cipher", "phone_index", "phone_masked")
        return self._apply_change(doc, expected_version, update, diff, "updated", unset)

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

        def change(session):
            after = self.db[store.RESIDENTS].find_one_and_update(
                {"_id": doc["_id"], "version": expected_version},
                operation,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if after is None:
                raise Conflict(
                    f"expected_version: the resident is at version {doc['version']}, "
                    f"not {expected_version}; reload and try again"
                )
            self._history(doc["_id"], action, diff, session)
            moved = action in ("moved", "moved_out", "moved_in")
            self.publish(
                topics.RESIDENT_MOVED if moved else topics.RESIDENT_UPDATED,
                after["grid_code"],
                {**_resident_event(after), "action": action, "changed": sorted(diff)},
            )
            return after

        after = self.changes(change)
        return self._render_resident(after)

    def _history(self, resident_id: str, action: str, diff: Mapping, session=None) -> None:
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
            },
            session=session,
        )

    def resident_history(self, resident_id: str) -> list[dict]:
        self._resident(resident_id)
        rows = self.db[store.RESIDENT_HISTORY].find({"resident_id": resident_id}).sort("at", 1)
        return [
            {
                "at": iso_time(row["at"]),
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
            # A deregistration cut short (its process died after the status change) is
            # finished by the client's retry before it hears that it was done.
            self._clear_memberships(resident_id, doc.get("deregistration_reason") or reason)
            raise Conflict("status: the resident is already deregistered")
        diff = {"status": (doc["status"], DEREGISTERED), "deregistration_reason": (None, reason)}
        update = {"status": DEREGISTERED, "deregistration_reason": reason}
        self._apply_change(doc, expected_version, update, diff, "deregistered")
        self._clear_memberships(resident_id, reason)
        return self._render_resident(self._resident(resident_id))

    def _clear_memberships(self, resident_id: str, reason: str) -> None:
        for membership in self.db[store.MEMBERSHIPS].find(
            {"resident_id": resident_id, "active": True}, {"_id": 1}
        ):
            self._clear_membership(membership["_id"], f"deregistered: {reason}")


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


@functools.lru_cache(maxsize=65536)
def _grid_path(grid_code: str) -> tuple[str, ...]:
    # Every resident of a grid has the same path; a bulk import asks 200,000 times.
    return tuple(path_codes(grid_code))
