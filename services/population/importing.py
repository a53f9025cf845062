"""Bulk imports (CSV/XLSX) as durable jobs, and cross-department roster matching.

`start` checks the file's format, encoding and header before anything is written, then
stores the file in GridFS with a queued job, so an accepted file is never lost: a timer
claims queued jobs (or ones whose worker died, once the lease runs out) and imports them.
Rows are upserted by the ID number's blind index, so running a job again, or importing
the same file twice, changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import gridfs
from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from gridwork_common.clock import as_stored, china_today
from gridwork_common.context import CallerContext
from gridwork_common.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridwork_common.idempotency import check_replay, fingerprint, keyed_id
from services.population import store, topics
from services.population.application import Population
from services.population.domain import access
from services.population.domain.codes import path_codes
from services.population.domain.identity import RESIDENT_ID_LENGTH, parse_resident_id
from services.population.domain.residents import EDITABLE_FIELDS, check_resident, normalise_phone
from services.population.metrics import count_import_rows
from services.population.tables import (
    Column,
    ImportFileError,
    RowError,
    error_report_csv,
    open_table,
)
from services.population.territory_file import TERRITORY, read_feature_collection

MAX_FILE_BYTES = 64 * 1024 * 1024
BATCH_SIZE = 2000
LEASE = timedelta(minutes=5)
QUEUED, RUNNING, FINISHED, FAILED = "queued", "running", "finished", "failed"
IMPORT_FILE_FIELD = "import_file"

RESIDENT_COLUMNS = (
    Column("id_number", ("公民身份号码", "身份证号", "身份证号码", "证件号码"), required=True),
    Column("id_type", ("证件类型",)),
    Column("nationality", ("国籍",)),
    Column("name", ("姓名",), required=True),
    Column("gender", ("性别",)),
    Column("birth_date", ("出生日期",)),
    Column("phone", ("联系电话", "手机号码", "手机号", "电话")),
    Column("ethnicity", ("民族",)),
    Column("household_registration_place", ("户籍地", "户籍地址")),
    Column("residence_type", ("人口类型", "居住类型")),
    Column("grid_code", ("网格编码", "所属网格"), required=True),
    Column("employment", ("工作单位", "职业")),
    Column("notes", ("备注",)),
)
HOUSE_COLUMNS = (
    Column("building_code", ("楼栋编码",), required=True),
    Column("room", ("房间号", "门牌号"), required=True),
    Column("address", ("地址",)),
    Column("rental_status", ("出租状态", "房屋状态")),
)
ENTITY_COLUMNS = (
    Column("credit_code", ("统一社会信用代码",), required=True),
    Column("name", ("名称", "单位名称"), required=True),
    Column("type", ("类型", "单位类型"), required=True),
    Column("address", ("地址",)),
    Column("grid_code", ("网格编码", "所属网格"), required=True),
    Column("legal_representative", ("法定代表人",)),
)
COLUMNS = {"residents": RESIDENT_COLUMNS, "houses": HOUSE_COLUMNS, "entities": ENTITY_COLUMNS}
KINDS = (*COLUMNS, TERRITORY)
# The fields whose change makes an imported row an update of the stored resident.
COMPARED_FIELDS = (*(f for f in EDITABLE_FIELDS if f != "phone"), "grid_code", "phone_index")


class ImportJobs:
    def __init__(self, population: Population):
        self.population = population
        self.db = population.db
        self.files = gridfs.GridFS(self.db, collection="import_files")

    # ------------------------------------------------------------------ accepting
    def start(
        self, kind: str, filename: str, content_base64: str, idempotency_key: str | None = None
    ) -> dict:
        """A retry under the same key gets the first attempt's job, not a second one."""
        self.population.require(access.IMPORTERS, "importing files")
        if kind not in KINDS:
            raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}")
        if kind == TERRITORY:
            self.population.require(access.ADMINISTRATORS, "importing the territory tree")
        if not isinstance(filename, str) or not filename.strip():
            raise InvalidInput("filename", "is required")
        try:
            content = base64.b64decode(content_base64 or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise InvalidInput("file", "is not valid base64") from None
        if len(content) > MAX_FILE_BYTES:
            raise InvalidInput("file", f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        caller = self.population.caller
        request = {
            "kind": kind,
            "filename": filename,
            "sha256": hashlib.sha256(content).hexdigest(),
        }
        if idempotency_key is None:
            job_id = uuid.uuid4().hex
        else:
            job_id = keyed_id("import_job", caller.user_id or "", idempotency_key)
            first = self.db[store.IMPORT_JOBS].find_one({"_id": job_id})
            if first is not None:
                check_replay(first, fingerprint(request))
                return _render_job(first)
        columns, ignored = self._check_file(kind, filename, content)  # before any write
        # The file holds ID and phone numbers in clear: it is stored sealed like them.
        sealed = self.population.cipher.seal(content, IMPORT_FILE_FIELD)
        file_id = self.files.put(sealed, filename=filename, job_id=job_id)
        job = {
            "_id": job_id,
            "kind": kind,
            "filename": filename,
            "file_id": file_id,
            "status": QUEUED,
            "columns": columns,
            "ignored_columns": ignored,
            "counts": _empty_counts(),
            "request_fingerprint": fingerprint(request),
            "created_at": as_stored(self.population.clock()),
            "created_by": caller.user_id,
            "caller": {
                "user_id": caller.user_id,
                "roles": list(caller.roles),
                "scope": caller.scope,
            },
        }
        try:
            self.db[store.IMPORT_JOBS].insert_one(job)
        except DuplicateKeyError:  # the same key's retry, concurrently: its job
            self.files.delete(file_id)
            first = self.db[store.IMPORT_JOBS].find_one({"_id": job_id})
            check_replay(first, fingerprint(request))
            return _render_job(first)
        return _render_job(job)

    def _check_file(self, kind: str, filename: str, content: bytes) -> tuple[list, list]:
        """The file's recognised and ignored columns (a territory has none); InvalidInput
        when the file cannot be imported at all."""
        if kind == TERRITORY:
            try:
                read_feature_collection(filename, content)
            except ImportFileError as exc:
                raise InvalidInput(exc.field, exc.problem) from None
            return [], []
        table = self._open(kind, filename, io.BytesIO(content))
        return table.columns, table.ignored

    def _open(self, kind: str, filename: str, stream):
        try:
            return open_table(stream, filename, COLUMNS[kind])
        except ImportFileError as exc:
            raise InvalidInput(exc.field, exc.problem) from None

    def job(self, job_id: str) -> dict:
        return _render_job(self._job(job_id))

    def _job(self, job_id: str) -> Mapping:
        job = self.db[store.IMPORT_JOBS].find_one({"_id": job_id})
        caller = self.population.caller
        if job is None or not (
            caller.has_role("system")
            or job["created_by"] == caller.user_id
            or caller.has_role("admin")
        ):
            raise NotFound(f"no import job {job_id}")
        return job

    def error_report(self, job_id: str) -> dict:
        job = self._job(job_id)
        rows = self.db[store.IMPORT_ERRORS].find({"job_id": job_id}).sort("row", 1)
        report = error_report_csv(RowError(r["row"], r["field"], r["reason"]) for r in rows)
        return {
            "filename": f"{job['filename']}.errors.csv",
            "content_type": "text/csv; charset=utf-8",
            "content_base64": base64.b64encode(report).decode(),
        }

    # ------------------------------------------------------------------ running
    def run_queued(self) -> int:
        """Claim and run queued jobs (and abandoned ones) until none is left."""
        finished = 0
        while (job := self._claim()) is not None:
            self.run(job)
            finished += 1
        return finished

    def _claim(self) -> Mapping | None:
        now = self.population.clock()
        return self.db[store.IMPORT_JOBS].find_one_and_update(
            {"$or": [{"status": QUEUED}, {"status": RUNNING, "lease_until": {"$lt": now}}]},
            {"$set": {"status": RUNNING, "lease_until": now + LEASE, "started_at": now}},
            sort=[("created_at", 1)],
            return_document=ReturnDocument.AFTER,
        )

    def run(self, job: Mapping) -> dict:
        # Rows are checked against the scope of whoever uploaded the file.
        importer = CallerContext(
            request_id=job["_id"],
            **{
                "user_id": job["caller"]["user_id"],
                "roles": tuple(job["caller"]["roles"]),
                "scope": job["caller"]["scope"],
            },
        )
        population = Population(
            self.db,
            self.population.cipher,
            self.population.events,
            importer,
            self.population.county_code,
            self.population.clock,
        )
        self.db[store.IMPORT_ERRORS].delete_many({"job_id": job["_id"]})  # a re-run starts over
        sealed = self.files.get(job["file_id"]).read()
        content = self.population.cipher.open(sealed, IMPORT_FILE_FIELD)
        if job["kind"] == TERRITORY:
            status, failure, counts, by_grid = self._run_territory(job, population, content)
        else:
            status, failure, counts, by_grid = self._run_rows(job, population, content)
        now = self.population.clock()

        def finish(session):  # the job's end and its event, or neither
            finished = self.db[store.IMPORT_JOBS].find_one_and_update(
                {"_id": job["_id"]},
                {
                    "$set": {
                        "status": status,
                        "failure": failure,
                        "finished_at": now,
                        "counts": counts,
                    },
                    "$unset": {"lease_until": ""},
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            population.publish(
                topics.IMPORT_FINISHED,
                importer.scope or population.county_code,
                {
                    "job_id": job["_id"],
                    "kind": job["kind"],
                    "counts": counts,
                    "by_grid": by_grid,
                    "imported_by": importer.user_id,
                },
            )
            return finished

        finished = population.changes(finish)
        return _render_job(finished)

    def _run_rows(self, job: Mapping, population: Population, content: bytes):
        """A CSV/XLSX job's rows in batches: (status, failure, counts, by_grid)."""
        total_rows = self._count_rows(job["kind"], job["filename"], content)
        self.db[store.IMPORT_JOBS].update_one(
            {"_id": job["_id"]}, {"$set": {"total_rows": total_rows}}
        )
        table = self._open(job["kind"], job["filename"], io.BytesIO(content))
        errors: list[dict] = []
        counts = _empty_counts()
        importer_rows = {
            "residents": ResidentRows(population),
            "houses": RecordRows(
                population.add_house,
                population.get_house,
                lambda row: f"{row.get('building_code', '')}-{str(row.get('room') or '').strip()}",
            ),
            "entities": RecordRows(
                population.register_entity,
                population.get_entity,
                lambda row: str(row.get("credit_code") or "").strip().upper(),
            ),
        }[job["kind"]]
        batch: list[tuple[int, dict]] = []
        counted = dict(counts)
        status, failure = FINISHED, None
        try:
            for row_number, values in table.rows:
                batch.append((row_number, values))
                if len(batch) >= BATCH_SIZE:
                    importer_rows.write(batch, counts, errors)
                    batch = []
                    self._checkpoint(job["_id"], counts, errors)
                    counted = count_import_rows(job["kind"], counts, counted)
            importer_rows.write(batch, counts, errors)
        except ImportFileError as exc:  # damage found deep in the file: rows so far stay
            status, failure = FAILED, str(exc)
        self._checkpoint(job["_id"], counts, errors)
        count_import_rows(job["kind"], counts, counted)
        return status, failure, counts, importer_rows.by_grid

    def _run_territory(self, job: Mapping, population: Population, content: bytes):
        """A territory job: the whole FeatureCollection through `import_territory`, its
        counts recorded after every stored batch (the lease extended with them). A file
        refused as a whole (overlaps, a bad polygon, a missing parent) fails the job
        naming the field and the codes; batches stored before a refusal stay stored."""
        collection = read_feature_collection(job["filename"], content)
        self.db[store.IMPORT_JOBS].update_one(
            {"_id": job["_id"]}, {"$set": {"total_rows": len(collection["features"])}}
        )
        counts = _empty_counts()

        def progress(stored: Mapping[str, int]) -> None:
            counts.update(stored, rows=sum(stored.values()))
            self._checkpoint(job["_id"], counts, [])

        status, failure = FINISHED, None
        try:
            population.import_territory(collection, progress)
        except (InvalidInput, Forbidden) as exc:
            status, failure = FAILED, str(exc)
        count_import_rows(TERRITORY, counts, _empty_counts())
        return status, failure, counts, {}

    def _count_rows(self, kind: str, filename: str, content: bytes) -> int | None:
        """The data rows of the file, read once before importing, so a progress bar can
        show `counts.rows` of `total_rows`; None when the file is damaged further down."""
        rows = self._open(kind, filename, io.BytesIO(content)).rows
        try:
            return sum(1 for _ in rows)
        except ImportFileError:
            return None
        finally:
            rows.close()

    def _checkpoint(self, job_id: str, counts: dict, errors: list[dict]) -> None:
        if errors:
            self.db[store.IMPORT_ERRORS].insert_many(
                [{"job_id": job_id, **error} for error in errors]
            )
            errors.clear()
        self.db[store.IMPORT_JOBS].update_one(
            {"_id": job_id},
            {"$set": {"counts": dict(counts), "lease_until": self.population.clock() + LEASE}},
        )

    # ------------------------------------------------------------------ matching
    def match_roster(self, rows: list[Mapping], apply_group: Mapping | None = None) -> dict:
        """Compare a department's roster (e.g. civil affairs' low-income list) with the
        residents in the caller's scope: matched, not found, and field mismatches."""
        population = self.population
        population.require(access.IMPORTERS + access.GROUP_WRITERS, "matching rosters")
        if not isinstance(rows, list) or not rows:
            raise InvalidInput("rows", "must be a non-empty list")
        if apply_group is not None:
            population.require(access.GROUP_WRITERS, "tagging matched residents")
        matched, not_found, mismatches, invalid = [], [], [], []
        today = china_today(population.clock)
        for index, row in enumerate(rows, start=1):
            number = str((row or {}).get("id_number") or "").strip().upper()
            problem = _roster_id_problem(number, today)
            if problem:
                invalid.append({"row": index, "field": "id_number", "reason": problem})
                continue
            found = population.find_resident(id_number=number)
            if not found:
                not_found.append({"row": index, "name": row.get("name")})
                continue
            resident = found[0]
            differences = _roster_differences(population, resident["id"], row)
            entry = {
                "row": index,
                "resident_id": resident["id"],
                "grid_code": resident["grid_code"],
            }
            if differences:
                mismatches.append({**entry, "fields": differences})
            matched.append(entry)
            if apply_group:
                population.flag_group(
                    resident["id"],
                    apply_group.get("group"),
                    apply_group.get("risk_level", "low"),
                    apply_group.get("responsible_worker_id"),
                    apply_group.get("note"),
                )
        return {
            "matched": matched,
            "not_found": not_found,
            "mismatches": mismatches,
            "invalid": invalid,
        }


def _roster_id_problem(number: str, today: date) -> str | None:
    if not number:
        return "is required"
    if len(number) == RESIDENT_ID_LENGTH:  # passports are matched as given
        try:
            parse_resident_id(number, today)
        except InvalidInput as problem:
            return problem.problem
    return None


def _roster_differences(population: Population, resident_id: str, row: Mapping) -> list[dict]:
    stored = population.db[store.RESIDENTS].find_one({"_id": resident_id})
    differences = []
    theirs_name = str(row.get("name") or "").strip()
    if theirs_name and theirs_name != stored["name"]:
        differences.append({"field": "name", "ours": stored["name"], "theirs": theirs_name})
    theirs_phone = str(row.get("phone") or "").strip()
    if theirs_phone:
        try:
            index = population.cipher.blind_index(normalise_phone(theirs_phone), "phone")
        except InvalidInput:
            index = None  # not a phone number at all: certainly not ours
        if index != stored.get("phone_index"):
            differences.append(
                {"field": "phone", "ours": stored.get("phone_masked"), "theirs": "(differs)"}
            )
    return differences


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

    def write(self, batch: list[tuple[int, dict]], counts: dict, errors: list[dict]) -> None:
        documents: dict[str, tuple[int, dict]] = {}
        for row_number, values in batch:
            counts["rows"] += 1
            record, problems = check_resident(values, self.today)
            if not problems and record.grid_code not in self.visible_grids:
                problems = [InvalidInput("grid_code", "no such grid in your scope")]
            if problems:
                counts["failed"] += 1
                errors.extend(
                    {"row": row_number, "field": p.field, "reason": p.problem} for p in problems
                )
                continue
            document = self.population.resident_document(record)
            first = self.seen.setdefault(document["id_index"], row_number)
            if first != row_number:
                counts["failed"] += 1
                errors.append(
                    {
                        "row": row_number,
                        "field": "id_number",
                        "reason": f"the same person as row {first}",
                    }
                )
                continue
            documents[document["id_index"]] = (row_number, document)
        if not documents:
            return
        existing = {
            doc["id_index"]: doc
            for doc in self.collection.find(
                {"id_index": {"$in": list(documents)}},
                {name: 1 for name in (*COMPARED_FIELDS, "id_index", "status")},
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
                self.collection.bulk_write(operations, ordered=False)
            except BulkWriteError as exc:  # a concurrent import inserted the same person
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        if history:
            self.population.db[store.RESIDENT_HISTORY].insert_many(history)

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

    def write(self, batch: Iterable[tuple[int, dict]], counts: dict, errors: list[dict]) -> None:
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


def _empty_counts() -> dict:
    return {"rows": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0}


def _render_job(job: Mapping) -> dict:
    return {
        "id": job["_id"],
        "kind": job["kind"],
        "filename": job["filename"],
        "status": job["status"],
        "columns": job.get("columns", []),
        "ignored_columns": job.get("ignored_columns", []),
        "counts": job.get("counts", _empty_counts()),
        "total_rows": job.get("total_rows"),  # data rows, once the job has started
        "created_at": job["created_at"].isoformat(),
        "failure": job.get("failure"),
        "finished_at": job["finished_at"].isoformat() if job.get("finished_at") else None,
    }
