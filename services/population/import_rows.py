"""Writing an import's rows: residents in batches (inserted, or updated with history,
by the ID number's blind index), houses and legal entities one at a time through the
same use case a form submission takes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from gridwork_common.clock import china_today
from gridwork_common.errors import Conflict, InvalidInput, NotFound
from services.population import store
from services.population.application import Population
from services.population.domain import access
from services.population.domain.codes import path_codes
from services.population.domain.residents import EDITABLE_FIELDS, check_resident

# The fields whose change makes an imported row an update of the stored resident.
COMPARED_FIELDS = (*(f for f in EDITABLE_FIELDS if f != "phone"), "grid_code", "phone_index")


@dataclasses.dataclass
class CheckedRows:
    """A batch of resident rows checked and turned into documents, not yet written."""

    rows: int
    failed: int = 0
    errors: list[dict] = dataclasses.field(default_factory=list)
    documents: dict[str, tuple[int, dict]] = dataclasses.field(
        default_factory=dict
    )  # by blind index


class ResidentRows:
    """Writes validated resident rows in batches: new ones inserted, changed ones updated
    (with history), unchanged ones left alone."""

    def __init__(self, population: Population):
        self.population = population
        self.collection = population.db[store.RESIDENTS]
        self.today = china_today(population.clock)
        self.visible_grids = {
            doc["_id"]
            for doc in population.db[store.TERRITORY].find(
                {"level": "grid", **access.scope_filter(population.caller)}, {"_id": 1}
            )
        }
        self.seen: dict[str, int] = {}  # blind index -> first row in this file
        self.by_grid: dict[str, dict[str, int]] = {}

    def skip(self, row_number: int, values: Mapping) -> None:
        """A row written before the job was taken over: remembered, so the same person
        later in the file is still refused as a repeat."""
        record, problems = check_resident(values, self.today)
        if not problems:
            index = self.population.resident_document(record)["id_index"]
            self.seen.setdefault(index, row_number)

    def prepare(self, batch: list[tuple[int, dict]]) -> CheckedRows:
        """The batch checked and encrypted, nothing read or written: the CPU half of a
        batch, which the import runs while the previous batch's transaction is written.
        Batches are prepared in file order (a repeat of an earlier row is refused here)."""
        checked = CheckedRows(rows=len(batch))
        for row_number, values in batch:
            record, problems = check_resident(values, self.today)
            if not problems and record.grid_code not in self.visible_grids:
                problems = [InvalidInput("grid_code", "no such grid in your scope")]
            if problems:
                checked.failed += 1
                checked.errors.extend(
                    {"row": row_number, "field": p.field, "reason": p.problem} for p in problems
                )
                continue
            document = self.population.resident_document(record)
            first = self.seen.setdefault(document["id_index"], row_number)
            if first != row_number:
                checked.failed += 1
                checked.errors.append(
                    {
                        "row": row_number,
                        "field": "id_number",
                        "reason": f"the same person as row {first}",
                    }
                )
                continue
            checked.documents[document["id_index"]] = (row_number, document)
        return checked

    def write(self, checked: CheckedRows, counts: dict, errors: list[dict], session=None) -> None:
        """A prepared batch stored: new residents inserted, changed ones updated, each
        with its history entry; its counts and row errors added to the job's."""
        counts["rows"] += checked.rows
        counts["failed"] += checked.failed
        errors.extend(checked.errors)
        documents = checked.documents
        if not documents:
            return
        # During a key rotation a resident may still be indexed under a previous key.
        current_of = {index: index for index in documents}
        cipher = self.population.cipher
        if cipher.rotating:
            for index, (_, document) in documents.items():
                number = cipher.decrypt(document["id_cipher"], "id_number")
                for previous in cipher.blind_indexes(number, "id_number")[1:]:
                    current_of[previous] = index
        existing = {
            current_of[doc["id_index"]]: doc
            for doc in self.collection.find(
                {"id_index": {"$in": list(current_of)}},
                {name: 1 for name in (*COMPARED_FIELDS, "id_index", "status")},
                session=session,
            )
        }
        operations, history = [], []
        for index, (row_number, document) in documents.items():
            stored = existing.get(index)
            if stored is None:
                operations.append(InsertOne(document))
                history.append(
                    self._history(document["_id"], None, {"grid_code": document["grid_code"]})
                )
                counts["created"] += 1
                self._count_grid(document["grid_code"], "created")
                continue
            if stored["grid_code"] not in self.visible_grids:
                # Someone registered elsewhere in the county: not the importer's to change.
                counts["failed"] += 1
                errors.append(
                    {
                        "row": row_number,
                        "field": "id_number",
                        "reason": "already registered outside your territory",
                    }
                )
                continue
            changes = {
                name: document.get(name)
                for name in COMPARED_FIELDS
                if stored.get(name) != document.get(name)
            }
            if stored.get("status") != "active":
                changes["status"] = "active"
            if not changes:
                counts["unchanged"] += 1
                continue
            if "grid_code" in changes:
                changes["path"] = path_codes(document["grid_code"])
            if "phone_index" in changes:
                changes.update(
                    phone_cipher=document.get("phone_cipher"),
                    phone_masked=document.get("phone_masked"),
                )
            operations.append(
                UpdateOne(
                    {"_id": stored["_id"]},
                    {
                        "$set": {
                            **changes,
                            "updated_at": document["updated_at"],
                            "updated_by": document["updated_by"],
                        },
                        "$inc": {"version": 1},
                    },
                )
            )
            history.append(self._history(stored["_id"], stored, changes))
            counts["updated"] += 1
            self._count_grid(document["grid_code"], "updated")
        if operations:
            try:
                self.collection.bulk_write(operations, ordered=False, session=session)
            except BulkWriteError as exc:  # a concurrent import inserted the same person
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        if history:
            self.population.db[store.RESIDENT_HISTORY].insert_many(history, session=session)

    def _count_grid(self, grid_code: str, what: str) -> None:
        per_grid = self.by_grid.setdefault(grid_code, {"created": 0, "updated": 0})
        per_grid[what] += 1

    def _history(self, resident_id: str, before: Mapping | None, changes: Mapping) -> dict:
        """The history entry of an imported row; `before` is None for a new resident.
        Phone numbers appear only as "changed", never in clear or as a hash."""
        caller = self.population.caller
        entry_changes = {}
        for name, value in changes.items():
            if name == "phone_index":
                entry_changes["phone"] = {"changed": True}
            elif name not in ("phone_cipher", "phone_masked", "path"):
                old = before.get(name) if before is not None else None
                entry_changes[name] = {"from": old, "to": value}
        return {
            "resident_id": resident_id,
            "at": self.population.clock(),
            "by": caller.user_id,
            "roles": list(caller.roles),
            "request_id": caller.request_id,
            "action": "imported",
            "changes": entry_changes,
        }


class RecordRows:
    """Houses and legal entities: few enough per county to write one at a time through
    the same use case a single form submission takes."""

    def __init__(self, write_one, read_one, key_of):
        self.write_one = write_one
        self.read_one = read_one
        self.key_of = key_of
        self.by_grid: dict[str, dict[str, int]] = {}

    def skip(self, row_number: int, values: Mapping) -> None:
        pass  # written through use cases that are idempotent by key

    def prepare(self, batch: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        return batch  # each row is checked by its use case as it is written

    def write(
        self, batch: Iterable[tuple[int, dict]], counts: dict, errors: list[dict], session=None
    ) -> None:
        """One row at a time through its use case (its own transaction; not `session`)."""
        for row_number, values in batch:
            counts["rows"] += 1
            try:
                before = self._current(values)
                after = self.write_one(values)
            except (InvalidInput, NotFound, Conflict) as problem:
                counts["failed"] += 1
                field = getattr(problem, "field", "grid_code")
                reason = getattr(problem, "problem", str(problem))
                errors.append({"row": row_number, "field": field, "reason": reason})
                continue
            outcome = "created" if before is None else "unchanged" if before == after else "updated"
            counts[outcome] += 1
            if outcome != "unchanged":
                per_grid = self.by_grid.setdefault(after["grid_code"], {"created": 0, "updated": 0})
                per_grid[outcome] += 1

    def _current(self, values: Mapping) -> dict | None:
        try:
            return self.read_one(self.key_of(values))
        except NotFound:
            return None
