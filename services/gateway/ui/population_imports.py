"""Bulk imports in the browser: upload a CSV or XLSX file through the same `start_import`
RPC as the API's POST /imports, watch the job's counts grow (htmx polls a fragment until
the job is finished or failed) and download the row-level error report."""

from __future__ import annotations

import base64

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from services.gateway.routes.population.imports import error_report_download
from services.gateway.routes.population.shared import IMPORTERS, SERVICE
from services.gateway.ui.pages import FormError, current_page, requires_roles

blueprint = Blueprint("population_imports", __name__, url_prefix="/population/imports")

KINDS = ("residents", "houses", "entities")
FILE_FIELD = "file"
MAX_FILENAME = 200
POLL_SECONDS = 1
RUNNING = ("queued", "running")


@blueprint.get("/")
@requires_roles(*IMPORTERS)
def upload_form():
    return render_template("population/import_upload.html", kinds=_kind_labels(), errors={})


@blueprint.post("/")
@requires_roles(*IMPORTERS)
def upload():
    kind = request.form.get("kind", "residents")
    upload = request.files.get(FILE_FIELD)
    filename = ((upload.filename if upload else "") or "").replace("\\", "/").rsplit("/", 1)[-1]
    content = upload.read() if upload else b""
    errors = {}
    if kind not in KINDS:
        errors["kind"] = _("Choose what the file holds.")
    if not filename.strip() or not content:
        errors["file"] = _("Choose a non-empty .csv or .xlsx file.")
    if not errors:
        try:
            job = current_page().rpc(
                SERVICE,
                "start_import",
                kind,
                filename.strip()[-MAX_FILENAME:],  # the end keeps the extension
                base64.b64encode(content).decode("ascii"),
            )
            return redirect(url_for("ui.population_imports.job", job_id=job["id"]), 303)
        except FormError as error:
            errors["file"] = error.message  # the header or format problem, as the API says
    page = render_template(
        "population/import_upload.html", kinds=_kind_labels(), errors=errors, kind=kind
    )
    return page, 422


@blueprint.get("/<job_id>")
def job(job_id: str):
    job = current_page().rpc(SERVICE, "import_job", job_id)  # the uploader's or an admin's
    return render_template("population/import_job.html", job=job, **_progress(job))


@blueprint.get("/<job_id>/progress")
def progress(job_id: str):
    """The progress fragment htmx swaps in; it asks again while the job runs."""
    job = current_page().rpc(SERVICE, "import_job", job_id)
    return render_template("population/import_progress.html", job=job, **_progress(job))


@blueprint.get("/<job_id>/errors.csv")
def errors_csv(job_id: str):
    response = error_report_download(current_page().rpc(SERVICE, "import_error_report", job_id))
    response.headers["Cache-Control"] = "no-store"
    return response


def _progress(job: dict) -> dict:
    counts = job["counts"]
    total = job.get("total_rows")
    done = counts["rows"]
    finished = job["status"] not in RUNNING
    # Without a total (not counted yet, or an empty file) only the end is known.
    percent = min(100, done * 100 // total) if total else (100 if finished else 0)
    return {
        "running": not finished,
        "total": total,
        "done": done,
        "percent": percent,
        "poll": f"every {POLL_SECONDS}s",
    }


def _kind_labels() -> dict[str, str]:
    return {
        "residents": _("Residents"),
        "houses": _("Houses"),
        "entities": _("Legal entities"),
    }
