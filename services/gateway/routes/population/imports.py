"""/api/v1 bulk imports and roster matching: uploading a CSV, XLSX or territory GeoJSON file
to import as a background job, the job's status and its rejected rows as a CSV download,
and matching a department's roster against the residents in scope."""

from __future__ import annotations

import base64
import binascii
from typing import Literal
from urllib.parse import quote

from flask import Blueprint, Response, request
from pydantic import Field

from services.gateway.api import Api, Call
from services.gateway.problems import ApiProblem
from services.gateway.routes.population.groups import GroupName, RiskLevel
from services.gateway.routes.population.shared import (
    IMPORTERS,
    SERVICE,
    TAG,
    RecordId,
    Reply,
    Request,
)

IMPORT_FILE_FIELD = "file"
ImportKind = Literal["residents", "houses", "entities", "territory"]


class ImportQuery(Request):
    kind: ImportKind


class ImportCounts(Reply):
    rows: int
    created: int
    updated: int
    unchanged: int
    failed: int


class ImportJob(Reply):
    id: str
    kind: ImportKind
    filename: str
    status: Literal["queued", "running", "finished", "failed"]
    columns: list[str]
    ignored_columns: list[str]
    counts: ImportCounts
    created_at: str
    failure: str | None = None
    finished_at: str | None = None


class RosterRow(Request):
    id_number: str | None = Field(
        default=None, max_length=32, description="a row without a valid one is reported invalid"
    )
    name: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=40)


class GroupTag(Request):
    group: GroupName
    risk_level: RiskLevel = "low"
    responsible_worker_id: RecordId
    note: str | None = Field(default=None, max_length=500)


class RosterMatchRequest(Request):
    rows: list[RosterRow] = Field(min_length=1, max_length=10000)
    apply_group: GroupTag | None = Field(
        default=None, description="flag every matched resident with this group"
    )


class RosterMatch(Reply):
    row: int
    resident_id: str
    grid_code: str


class RosterNotFound(Reply):
    row: int
    name: str | None = None


class RosterFieldDifference(Reply):
    field: str
    ours: str | None = None
    theirs: str | None = None


class RosterMismatch(RosterMatch):
    fields: list[RosterFieldDifference]


class RosterInvalidRow(Reply):
    row: int
    field: str
    reason: str


class RosterMatchResult(Reply):
    matched: list[RosterMatch]
    not_found: list[RosterNotFound]
    mismatches: list[RosterMismatch]
    invalid: list[RosterInvalidRow]


def _uploaded_file() -> tuple[str, bytes]:
    upload = request.files.get(IMPORT_FILE_FIELD)
    if upload is None:
        raise ApiProblem(
            400,
            "Bad Request",
            f"{IMPORT_FILE_FIELD}: upload the file as multipart/form-data field "
            f"'{IMPORT_FILE_FIELD}'",
            field=IMPORT_FILE_FIELD,
        )
    filename = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not filename:
        raise ApiProblem(
            400, "Bad Request", f"{IMPORT_FILE_FIELD}: needs a filename", field=IMPORT_FILE_FIELD
        )
    content = upload.read()
    if not content:
        raise ApiProblem(
            400, "Bad Request", f"{IMPORT_FILE_FIELD}: the file is empty", field=IMPORT_FILE_FIELD
        )
    return filename[-200:], content  # the end keeps the extension


# OpenAPI for what the views handle themselves (the upload, the CSV download).
IMPORT_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [IMPORT_FILE_FIELD],
                "properties": {
                    IMPORT_FILE_FIELD: {
                        "type": "string",
                        "contentMediaType": "application/octet-stream",
                        "minLength": 1,
                        "description": (
                            "a .csv (UTF-8 or GB18030) or .xlsx file; a .geojson or "
                            ".json FeatureCollection for kind=territory"
                        ),
                    }
                },
            },
        }
    },
}
ERROR_REPORT_RESPONSE = {
    "description": "UTF-8 CSV (with a BOM for Excel): row, field, reason",
    "headers": {
        "Content-Disposition": {
            "schema": {"type": "string"},
            "description": "attachment; filename=<the uploaded name>.errors.csv",
        }
    },
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


def error_report_download(report: dict) -> Response:
    """An import job's error report, as the population service sends it, as a CSV download
    (the API's and the command centre's)."""
    try:
        content = base64.b64decode(report["content_base64"], validate=True)
    except (binascii.Error, KeyError, TypeError) as exc:
        raise RuntimeError("the population service sent an unreadable report") from exc
    response = Response(content, status=200, content_type=report["content_type"])
    response.headers["Content-Disposition"] = _content_disposition(report["filename"])
    return response


def _content_disposition(filename: str) -> str:
    """An attachment named `filename`: an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def register(api: Api, blueprint: Blueprint) -> None:
    @api.operation(
        blueprint,
        "POST",
        "/imports",
        summary="Upload a CSV or XLSX file, or a territory's GeoJSON, to import (a job)",
        description=(
            "multipart/form-data with the file in field `file`. The header row is checked "
            "before the job is accepted (202); rows are imported in the background: poll "
            "GET /imports/{job_id}. `kind=territory` (administrators) takes a GeoJSON "
            "FeatureCollection (.geojson/.json) as POST /territories/import does, for "
            "territories of thousands of grids: `counts` grows batch by batch up to "
            "`total_rows` features; overlaps or a bad polygon fail the job, `failure` "
            "naming the field and the codes."
        ),
        tag=TAG,
        query=ImportQuery,
        response=ImportJob,
        status=202,
        roles=IMPORTERS,
        idempotent=True,
        raw_body=IMPORT_UPLOAD,
    )
    def start_import(call: Call):
        filename, content = _uploaded_file()
        encoded = base64.b64encode(content).decode("ascii")
        return call.rpc(
            SERVICE, "start_import", call.query.kind, filename, encoded, call.idempotency_key
        )

    @api.operation(
        blueprint,
        "GET",
        "/imports/{job_id}",
        summary="An import job: status and counts",
        description="Visible to whoever uploaded the file and to administrators.",
        tag=TAG,
        response=ImportJob,
    )
    def import_job(call: Call):
        return call.rpc(SERVICE, "import_job", call.path["job_id"])

    @api.operation(
        blueprint,
        "GET",
        "/imports/{job_id}/errors.csv",
        summary="An import job's rejected rows as a CSV download (row, field, reason)",
        tag=TAG,
        raw_response=ERROR_REPORT_RESPONSE,
    )
    def import_errors(call: Call):
        return error_report_download(call.rpc(SERVICE, "import_error_report", call.path["job_id"]))

    @api.operation(
        blueprint,
        "POST",
        "/roster-matches",
        summary="Match a department's roster against the residents in scope",
        description=(
            "Rows are matched by ID number: matched, not found, field mismatches and invalid "
            "rows. With apply_group, every matched resident is flagged with that group."
        ),
        tag=TAG,
        body=RosterMatchRequest,
        response=RosterMatchResult,
        idempotent=True,
    )
    def match_roster(call: Call):
        body: RosterMatchRequest = call.body
        rows = [row.model_dump(exclude_none=True) for row in body.rows]
        apply_group = body.apply_group.model_dump() if body.apply_group else None
        return call.rpc(SERVICE, "match_roster", rows, apply_group=apply_group)
