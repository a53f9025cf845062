"""The case queues (/cases/queues/<kind>): what each role must act on, with each case's
deadline status, filters in the URL, sort by deadline, bulk actions (each case its own
idempotent command, its own result) and the CSV export of exactly the filtered set.

The data (queues, filters, loading, deadlines) is in queue_data.py; this module is the
views: the page, the CSV and the bulk action.
"""

from __future__ import annotations

import csv
import io
import uuid

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.routing import BuildError

from services.gateway.ui import labels
from services.gateway.ui import queue_data as data
from services.gateway.ui.i18n import china_time
from services.gateway.ui.pages import (
    Conflict,
    FormError,
    PageForbidden,
    PageNotFound,
    Unavailable,
    current_page,
    requires_roles,
)

blueprint = Blueprint("queues", __name__, url_prefix="/cases")

MAX_BULK = 100  # cases in one bulk action


def _queue(kind: str) -> data.Queue:
    queue = data.QUEUES.get(kind)
    if queue is None:
        abort(404)
    if not current_page().has_role(*queue.roles):
        raise PageForbidden()
    return queue


@blueprint.get("/")
@requires_roles(*data.EVERYONE)
def index():
    first = data.queues_for(current_page().caller)[0]
    return redirect(url_for("ui.queues.queue", kind=first.kind))


@blueprint.get("/queues/<kind>")
def queue(kind: str):
    return _render(_queue(kind))


@blueprint.post("/queues/<kind>/bulk")
def bulk(kind: str):
    queue = _queue(kind)
    action = data.bulk_action(queue, current_page().caller)
    if action is None:
        abort(404)
    results = _run_bulk(action)
    return _render(queue, results=results)


@blueprint.get("/queues/<kind>/export.csv")
def export(kind: str):
    queue = _queue(kind)
    page = current_page()
    query = data.parse_query(request.args, queue, page.caller)
    rows = data.load(page, queue, query)
    due = data.deadlines(page, rows.items)
    names = _category_names()
    buffer = io.StringIO()
    buffer.write("\ufeff")  # a BOM, so Excel reads the Chinese as UTF-8
    writer = csv.writer(buffer)
    writer.writerow(
        [
            _("Case"),
            _("Category"),
            _("Urgency"),
            _("State"),
            _("Grid"),
            _("Reported at"),
            _("Stage"),
            _("Stage deadline"),
            _("Working time left (minutes)"),
            _("Deadline status"),
        ]
    )
    for row in rows.items:
        deadline = due[row["id"]]
        writer.writerow(
            [
                row["id"],
                f"{row['category']} {names.get(row['category'], '')}".strip(),
                labels.label(labels.URGENCIES, row["urgency"]),
                labels.label(labels.CASE_STATES, row["state"]),
                row["grid_code"],
                china_time(row["reported_at"]),
                labels.STAGES.get(row.get("stage") or "", ""),
                china_time(row.get("stage_due")),
                "" if deadline.minutes_left is None else round(deadline.minutes_left),
                data.STATUS_LABELS[deadline.status],
            ]
        )
    filename = f"cases-{kind}.csv"
    return Response(
        buffer.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


# ---------------------------------------------------------------------- rendering


def _render(queue: data.Queue, results: list[dict] | None = None):
    page = current_page()
    query = data.parse_query(request.args, queue, page.caller)
    rows = data.load(page, queue, query)
    pages = max(1, -(-len(rows.items) // query.size))
    query.page = min(query.page, pages)
    shown = rows.items[(query.page - 1) * query.size : query.page * query.size]
    bulk = data.bulk_action(queue, page.caller)
    departments = []
    if bulk == "dispatch":
        departments = page.rpc(data.EVENTS, "departments", page.caller.scope)
    return render_template(
        "queues/queue.html",
        queue=queue,
        bulk=bulk,
        queues=data.queues_for(page.caller),
        query=query,
        rows=shown,
        total=len(rows.items),
        truncated=rows.truncated,
        pages=pages,
        due=data.deadlines(page, shown),
        keys={row["id"]: uuid.uuid4().hex for row in shown},
        categories=_category_names(),
        states=labels.CASE_STATES,
        stages=labels.STAGES,
        urgencies=labels.URGENCIES,
        statuses=data.STATUS_LABELS,
        fixed_state=queue.has_state(page.caller),
        departments=departments,
        results=results,
        time_left=time_left,
        case_url=case_url,
        max_rows=data.MAX_ROWS,
    )


def case_url(case_id: str) -> str:
    """The case page (UI case engineer's `ui.case.view`); its documented path until then."""
    try:
        return url_for("ui.case.view", case_id=case_id)
    except BuildError:
        return f"/cases/{case_id}"


def time_left(deadline: data.Deadline) -> str:
    """Working time left, or overdue by (0 working minutes overdue at night is overdue)."""
    if deadline.minutes_left is None:
        return "—"
    hours, rest = divmod(round(abs(deadline.minutes_left)), 60)
    if deadline.past_due or deadline.minutes_left < 0:
        return _("%(hours)d h %(minutes)d min overdue", hours=hours, minutes=rest)
    return _("%(hours)d h %(minutes)d min left", hours=hours, minutes=rest)


def _category_names() -> dict[str, str]:
    catalogue = current_page().rpc(data.EVENTS, "catalogue")
    return {entry["code"]: entry["name"] for entry in catalogue["entries"]}


# ---------------------------------------------------------------------- bulk actions


def _run_bulk(action: str) -> list[dict]:
    """Each selected case is its own command with its own Idempotency-Key (rendered with
    the row, so sending the same form again replays instead of acting twice), and its own
    result: done, or refused with the reason."""
    page = current_page()
    selected = request.form.getlist("case")[:MAX_BULK]
    fields = {}
    if action == "dispatch":
        department = request.form.get("department", "").strip()
        if not department:
            return [
                _refused(case_id, _("Choose a department to dispatch to.")) for case_id in selected
            ]
        fields["department_code"] = department
    results = []
    for case_id in selected:
        version = data.to_int(request.form.get(f"version-{case_id}"), 0)
        key = request.form.get(f"key-{case_id}", "").strip()
        if version < 1 or not key:
            results.append(_refused(case_id, _("The form is incomplete; reload the queue.")))
            continue
        try:
            case = page.rpc(data.EVENTS, "act", case_id, action, version, key, fields or None)
        except (Conflict, FormError, PageForbidden, PageNotFound, Unavailable) as error:
            results.append(_refused(case_id, _reason(error)))
            continue
        results.append({"id": case_id, "ok": True, "state": case["state"]})
    return results


def _refused(case_id: str, reason: str) -> dict:
    return {"id": case_id, "ok": False, "reason": reason}


def _reason(error: Exception) -> str:
    if isinstance(error, Conflict):
        if error.kind == "StaleVersion":
            return _("The case changed meanwhile; reload the queue and try again.")
        return _("The case's state no longer allows this step.")
    if isinstance(error, PageNotFound):
        return _("No such case in your area.")
    if isinstance(error, PageForbidden):
        return _("You may not take this step on this case.")
    if isinstance(error, Unavailable):
        return _("The service did not answer; send the form again (it will not act twice).")
    return _("Refused: %(detail)s", detail=getattr(error, "message", ""))
