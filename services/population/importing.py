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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import gridfs
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from gridwork_common.clock import as_stored, china_today
from gridwork_common.context import CallerContext
from gridwork_common.errors import Forbidden, InvalidInput, NotFound
from gridwork_common.idempotency import check_replay, fingerprint, keyed_id
from services.population import store, topics
from services.population.application import Population
from services.population.domain import access
from services.population.domain.identity import RESIDENT_ID_LENGTH, parse_resident_id
from services.population.domain.residents import normalise_phone
from services.population.import_lease import QUEUED, JobLease, LeaseLost
from services.population.import_rows import RecordRows, ResidentRows
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
FINISHED, FAILED = "finished", "failed"
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
        lease = JobLease(self.db[store.IMPORT_JOBS], self.population.clock)
        while (job := lease.claim()) is not None:
            try:
                self.run(job, lease)
            except LeaseLost:
                continue  # another replica runs it now
            finished += 1
        return finished

    def run(self, job: Mapping, lease: JobLease) -> dict:
        """Import the job's rows from its last checkpoint on (a job taken over from a
        replica that died resumes there): each batch is written with its checkpoint in
        one transaction, so a row is never lost or written twice."""
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
        done = job.get("checkpoint_rows", 0)
        if not done:
            self.db[store.IMPORT_ERRORS].delete_many({"job_id": job["_id"]})  # from the start
        sealed = self.files.get(job["file_id"]).read()
        content = self.population.cipher.open(sealed, IMPORT_FILE_FIELD)
        if job["kind"] == TERRITORY:
            status, failure, counts, by_grid = self._run_territory(job, lease, population, content)
        else:
            status, failure, counts, by_grid = self._run_rows(job, lease, population, content, done)
        now = self.population.clock()

        def finish(session):  # the job's end and its event, or neither
            finished = self.db[store.IMPORT_JOBS].find_one_and_update(
                lease.mine(job),
                {
                    "$set": {
                        "status": status,
                        "failure": failure,
                        "finished_at": now,
                        "counts": counts,
                    },
                    "$unset": {"lease_until": "", "lease_owner": ""},
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if finished is None:
                raise LeaseLost(job["_id"])
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

    def _run_rows(
        self, job: Mapping, lease: JobLease, population: Population, content: bytes, done: int
    ):
        """A CSV/XLSX job's rows in batches after the `done` ones of its last checkpoint:
        (status, failure, counts, by_grid)."""
        total_rows = self._count_rows(job["kind"], job["filename"], content)
        self.db[store.IMPORT_JOBS].update_one(lease.mine(job), {"$set": {"total_rows": total_rows}})
        table = self._open(job["kind"], job["filename"], io.BytesIO(content))
        errors: list[dict] = []
        counts = {**_empty_counts(), **(job.get("counts") or {})} if done else _empty_counts()
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
        if done:
            importer_rows.by_grid = {g: dict(c) for g, c in (job.get("by_grid") or {}).items()}
        batch: list[tuple[int, dict]] = []
        position = 0  # data rows read from the file
        counted = dict(counts)  # what the import-rows metrics have counted so far
        status, failure = FINISHED, None
        # One batch ahead: the next batch is checked and encrypted (CPU) while the one
        # before it is written (waiting on MongoDB). Batches are still written one at a
        # time, in file order, each with its checkpoint.
        written = None  # the batch being prepared, then written on the next turn
        with lease.kept(job), ThreadPoolExecutor(1, "import-prepare") as preparing:

            def write_ahead(next_batch: list | None) -> None:
                nonlocal written, counted
                ahead = written
                written = None
                if next_batch is not None:
                    written = (len(next_batch), preparing.submit(importer_rows.prepare, next_batch))
                if ahead is not None:
                    rows, prepared = ahead
                    self._write_batch(
                        job, lease, importer_rows, rows, prepared.result(), counts, errors
                    )
                    counted = count_import_rows(job["kind"], counts, counted)

            try:
                for row_number, values in table.rows:
                    position += 1
                    if position <= done:
                        importer_rows.skip(row_number, values)
                        continue
                    batch.append((row_number, values))
                    if len(batch) >= BATCH_SIZE:
                        write_ahead(batch)
                        batch = []
            except ImportFileError as exc:  # damage found deep in the file: rows so far stay
                status, failure = FAILED, str(exc)
            write_ahead(batch)
            write_ahead(None)
        count_import_rows(job["kind"], counts, counted)
        return status, failure, counts, importer_rows.by_grid

    def _run_territory(self, job: Mapping, lease: JobLease, population: Population, content: bytes):
        """A territory job: the whole FeatureCollection through `import_territory`, its
        counts recorded after every stored batch (the lease renewed with them). A file
        refused as a whole (overlaps, a bad polygon, a missing parent) fails the job
        naming the field and the codes; batches stored before a refusal stay stored. A job
        taken over from a replica that died starts the file again: unchanged nodes are not
        written twice (the import compares before it writes)."""
        collection = read_feature_collection(job["filename"], content)
        self.db[store.IMPORT_JOBS].update_one(
            lease.mine(job), {"$set": {"total_rows": len(collection["features"])}}
        )
        counts = _empty_counts()

        def progress(stored: Mapping[str, int]) -> None:
            counts.update(stored, rows=sum(stored.values()))
            renewed = self.db[store.IMPORT_JOBS].update_one(
                lease.mine(job), {"$set": {"counts": dict(counts), **lease.renewal()}}
            )
            if not renewed.matched_count:
                raise LeaseLost(job["_id"])

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

    def _write_batch(
        self, job, lease: JobLease, rows, batch_rows: int, prepared, counts: dict, errors: list
    ) -> None:
        """A prepared batch of `batch_rows` rows, their errors and the checkpoint after
        them, in one transaction for residents (houses and entities go through their
        one-row use cases, which are idempotent by key; only the checkpoint is written
        after them)."""
        checkpoint_rows = job.get("checkpoint_rows", 0) + batch_rows

        def write(session) -> None:
            rows.write(prepared, counts, errors, session)
            if errors:
                self.db[store.IMPORT_ERRORS].insert_many(
                    [{"job_id": job["_id"], **error} for error in errors], session=session
                )
            checkpoint = {
                "counts": dict(counts),
                "by_grid": rows.by_grid,
                "checkpoint_rows": checkpoint_rows,
                **lease.renewal(),
            }
            if (
                not self.db[store.IMPORT_JOBS]
                .update_one(lease.mine(job), {"$set": checkpoint}, session=session)
                .matched_count
            ):
                raise LeaseLost(job["_id"])

        if isinstance(rows, ResidentRows):
            with (
                lease.writing(),
                self.db.client.start_session() as session,
                session.start_transaction(),
            ):
                write(session)
        else:
            write(None)
        errors.clear()
        job["checkpoint_rows"] = checkpoint_rows

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
            indexes = population.cipher.blind_indexes(normalise_phone(theirs_phone), "phone")
        except InvalidInput:
            indexes = []  # not a phone number at all: certainly not ours
        if stored.get("phone_index") not in indexes:
            differences.append(
                {"field": "phone", "ours": stored.get("phone_masked"), "theirs": "(differs)"}
            )
    return differences


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
