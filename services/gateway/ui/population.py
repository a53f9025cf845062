"""Population pages: the territory tree with statistics, residents (masked; revealed with
a stated purpose), special and vulnerable groups with this month's visit status, and the
access audit. Bulk imports are in population_imports.py.

Every view calls the population service's RPCs the API's routes call
(services/gateway/routes/population/) in the caller's name: the service checks roles and
territory scope, and a node or resident outside the scope is the 404 page.
"""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gridwork_common import roles
from gridwork_common.service_names import POPULATION
from services.gateway.ui.pages import FormError, PageNotFound, current_page, requires_roles

blueprint = Blueprint("population", __name__, url_prefix="/population")

SERVICE = POPULATION
READERS = (roles.CENTRE_OPERATOR, roles.LEADER, roles.GRID_LEADER, roles.GRID_WORKER, roles.ADMIN)
# As the service's access rules (services/population/domain/access.py): who may reveal,
# who sees group memberships, who reads the access audit. The service decides; these
# only spare a caller a form or page they cannot use.
REVEALERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
GROUP_READERS = (roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
AUDITORS = (roles.LEADER, roles.ADMIN, roles.CENTRE_OPERATOR)
REVEALABLE = ("id_number", "phone")
MAX_PURPOSE_LENGTH = 200  # as the API's X-Reveal-Purpose
MAX_QUERY_LENGTH = 40
RESIDENTS_PAGE = 50
GROUPS_PAGE = 20  # each member's name is one more RPC
AUDIT_PAGE = 50
# Visit status of a membership this month (the service's clock, China time).
DONE, DUE, OVERDUE = "done", "due", "overdue"


def _scope_code() -> str:
    scope = current_page().caller.scope
    if not scope:
        raise PageNotFound()
    return scope


def _code_argument() -> str:
    return (request.args.get("code") or "").strip()[:20] or _scope_code()


def _cursor() -> str | None:
    return (request.args.get("cursor") or "").strip()[:200] or None


def _trail(node: dict) -> list[dict]:
    """The node's ancestors the caller may open (from their scope down), then the node."""
    page = current_page()
    scope = page.caller.scope or ""
    codes = [code for code in node["path"] if len(code) >= len(scope) and code != node["code"]]
    return [page.rpc(SERVICE, "get_territory", code) for code in codes] + [node]


@blueprint.get("/")
@requires_roles(*READERS)
def index():
    return redirect(url_for("ui.population.territory", code=_scope_code()))


@blueprint.get("/territory/<code>")
@requires_roles(*READERS)
def territory(code: str):
    page = current_page()
    node = page.rpc(SERVICE, "get_territory", code)
    statistics = _statistics(code)
    children = [
        {**child, "statistics": _statistics(child["code"])}
        for child in page.rpc(SERVICE, "territory_children", code)
    ]
    return render_template(
        "population/territory.html",
        node=node,
        trail=_trail(node),
        statistics=statistics,
        children=children,
        group_names=_group_names(),
        reads_groups=page.has_role(*GROUP_READERS),
    )


def _statistics(code: str) -> dict:
    """The service's counts over a subtree, with the group members' total (present only
    for the roles that may see group memberships)."""
    statistics = current_page().rpc(SERVICE, "statistics", code)
    if "group_members" in statistics:
        statistics["group_total"] = sum(
            count for levels in statistics["group_members"].values() for count in levels.values()
        )
    return statistics


@blueprint.get("/residents")
@requires_roles(*READERS)
def residents():
    """A territory node's residents, a page at a time, or a search by ID or phone."""
    page = current_page()
    by = request.args.get("by", "id_number")
    query = (request.args.get("q") or "").strip()[:MAX_QUERY_LENGTH]
    errors, found, listing, node = {}, None, None, None
    if query:
        if by not in REVEALABLE:
            by = "id_number"
        try:
            found = page.rpc(SERVICE, "find_resident", **{by: query})
        except FormError:
            errors = {"q": _("Enter a full ID number or phone number.")}
    else:
        node = page.rpc(SERVICE, "get_territory", _code_argument())
        listing = page.rpc(
            SERVICE, "list_residents", node["code"], cursor=_cursor(), limit=RESIDENTS_PAGE
        )
    status = 422 if errors else 200
    return render_template(
        "population/residents.html",
        by=by,
        query=query,
        found=found,
        listing=listing,
        node=node,
        errors=errors,
    ), status


@blueprint.get("/residents/<resident_id>")
@requires_roles(*READERS)
def resident(resident_id: str):
    resident = current_page().rpc(SERVICE, "get_resident", resident_id)
    return _resident_page(resident)


@blueprint.post("/residents/<resident_id>/reveal")
@requires_roles(*REVEALERS)
def reveal(resident_id: str):
    """Full ID and phone numbers for a stated purpose: the service writes the reveal to
    the access audit, as for the API's `?reveal=` with `X-Reveal-Purpose`."""
    page = current_page()
    purpose = (request.form.get("purpose") or "").strip()
    fields = sorted({name for name in request.form.getlist("fields") if name in REVEALABLE})
    errors = {}
    if not fields:
        errors["fields"] = _("Choose what to reveal.")
    if len(purpose) > MAX_PURPOSE_LENGTH:
        errors["purpose"] = _("At most %(count)d characters.", count=MAX_PURPOSE_LENGTH)
    if not errors:
        try:
            revealed = page.rpc(
                SERVICE, "get_resident", resident_id, reveal=fields, purpose=purpose
            )
            return _resident_page(revealed, revealed_fields=fields)
        except FormError as error:
            field = "purpose" if error.field in (None, "purpose") else "fields"
            errors[field] = (
                _("State why you need the full values (at least 4 characters).")
                if field == "purpose"
                else _("Choose what to reveal.")
            )
    resident = page.rpc(SERVICE, "get_resident", resident_id)
    return _resident_page(resident, errors=errors, purpose=purpose, status=422)


def _resident_page(resident, revealed_fields=(), errors=None, purpose="", status=200):
    page = current_page()
    node = page.rpc(SERVICE, "get_territory", resident["grid_code"])
    response = make_response(
        render_template(
            "population/resident.html",
            resident=resident,
            grid=node,
            revealed=revealed_fields,
            can_reveal=page.has_role(*REVEALERS),
            group_names=_group_names(),
            errors=errors or {},
            purpose=purpose,
            max_purpose=MAX_PURPOSE_LENGTH,
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"  # personal data: not kept by the browser
    return response


@blueprint.get("/groups")
@requires_roles(*GROUP_READERS)
def groups():
    """Active group members under a node, with this month's visit status."""
    page = current_page()
    node = page.rpc(SERVICE, "get_territory", _code_argument())
    group = request.args.get("group") or None
    names = _group_names()
    if group not in names:
        group = None
    listing = page.rpc(
        SERVICE,
        "list_group_members",
        node["code"],
        group=group,
        cursor=_cursor(),
        limit=GROUPS_PAGE,
    )
    period, statuses = _visit_statuses(listing["items"])
    members = [
        {
            **member,
            "resident": page.rpc(SERVICE, "get_resident", member["resident_id"]),
            "visits": statuses[member["id"]],
        }
        for member in listing["items"]
    ]
    return render_template(
        "population/groups.html",
        node=node,
        members=members,
        next_cursor=listing.get("next_cursor"),
        period=period,
        group=group,
        group_names=names,
    )


def _visit_statuses(memberships: list[dict]) -> tuple[str | None, dict[str, dict]]:
    """This month's period and each membership's visit status, from the responsible
    workers' worklists (the service counts the month in China time by its own clock)."""
    page = current_page()
    worklists = [
        page.rpc(SERVICE, "visit_worklist", worker_id=worker)
        for worker in sorted({m["responsible_worker_id"] for m in memberships})
    ]
    period = worklists[0]["period"] if worklists else None
    return period, visit_statuses(memberships, worklists)


def visit_statuses(memberships: list[dict], worklists: list[dict]) -> dict[str, dict]:
    """{membership id: status}: overdue when last month's visits were missed and this
    month's are not done yet, due while this month's are not done, done once they are
    (a worklist lists only what is still due this month and what was missed last month)."""
    due = {item["id"]: item for worklist in worklists for item in worklist["due"]}
    missed = {item["id"] for worklist in worklists for item in worklist["overdue"]}
    statuses = {}
    for membership in memberships:
        this_month = due.get(membership["id"])
        if this_month is None:
            statuses[membership["id"]] = {"status": DONE}
        else:
            statuses[membership["id"]] = {
                "status": OVERDUE if membership["id"] in missed else DUE,
                "done": this_month["done"],
                "required": this_month["required"],
            }
    return statuses


@blueprint.get("/audit")
@requires_roles(*AUDITORS)
def audit():
    """Who saw whose full ID or phone number, and why (newest first)."""
    resident_id = (request.args.get("resident_id") or "").strip()[:64] or None
    listing = current_page().rpc(
        SERVICE, "access_audit", resident_id=resident_id, cursor=_cursor(), limit=AUDIT_PAGE
    )
    return render_template(
        "population/audit.html",
        entries=listing["items"],
        next_cursor=listing.get("next_cursor"),
        resident_id=resident_id or "",
    )


def _group_names() -> dict[str, str]:
    return {
        "severe_mental_disorder": _("Severe mental disorder"),
        "drug_user": _("Drug user"),
        "community_correction": _("Community correction"),
        "released_prisoner": _("Released prisoner"),
        "key_youth": _("Key youth"),
        "low_income": _("Low income"),
        "elderly_alone": _("Elderly living alone"),
        "disabled": _("Disabled"),
        "left_behind_child": _("Left-behind child"),
    }
