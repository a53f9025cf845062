"""Publishing a new catalogue version from the administration pages: a form adds an item
or changes one (code, name, its category's name, the department kind owning it at each
centre level, whether it may be settled on site or reported by the public, and the
working hours of every stage for normal and urgent cases); sending it publishes the
current catalogue with that item as the next version, through the events service's
`publish_catalogue` (the RPC of POST /api/v1/catalogue).

The item is checked by the API's own model (`NewCatalogueEntry`) before anything is
sent, and the whole document by the service; either's complaint is shown next to its
field. The form carries the version it was opened on: if another version was published
meanwhile (or the same form is sent twice), nothing is published and the form says so,
so an item is never published on top of changes it did not see."""

from __future__ import annotations

import re

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from pydantic import ValidationError

from gridwork_common import roles
from gridwork_common.service_names import EVENTS
from services.gateway.routes.incidents.county_setup import NewCatalogueEntry
from services.gateway.ui import labels
from services.gateway.ui.admin_forms import problem_message
from services.gateway.ui.pages import Conflict, FormError, current_page, requires_roles

blueprint = Blueprint("catalogue", __name__, url_prefix="/admin/catalogue")
URGENCIES = ("normal", "urgent")
# "entries[3].time_limits.urgent.accept", "entries.04.01.owners.village": the service's
# names for an item's fields, with the item's place or code in front.
SERVICE_ENTRY_FIELD = re.compile(r"^entries(?:\[\d+\]|\.\d{2}\.\d{2})\.(?P<rest>.+)$")


def form_field(parts: list[str] | tuple) -> str:
    """The form's field for an item field's path (code, owners.village, time_limits.
    urgent.accept, …)."""
    parts = [str(part) for part in parts]
    if parts[:1] == ["time_limits"] and len(parts) >= 3:
        return f"{parts[1]}_{parts[2]}"
    if parts[:1] == ["owners"] and len(parts) >= 2:
        return f"owner_{parts[1]}"
    if parts[:1] == ["categories"]:
        return "category_name"
    return parts[0] if parts else ""


def service_field(field: str | None) -> str:
    """The form's field for a field the events service named."""
    match = SERVICE_ENTRY_FIELD.match(field or "")
    if match:
        return form_field(match["rest"].split("."))
    return form_field((field or "").split("."))


def _department_kinds() -> dict[str, list[dict]]:
    """Level -> the department kinds registered at that level (code and a name)."""
    kinds: dict[str, dict[str, str]] = {level: {} for level in labels.CENTRE_LEVELS}
    for department in current_page().rpc(EVENTS, "departments", None):
        if department["level"] in kinds:
            # "530402001-police-station" named "玉兴街道派出所": the kind keeps the name
            kinds[department["level"]].setdefault(department["kind"], department["name"])
    return {
        level: [{"kind": kind, "name": name} for kind, name in sorted(found.items())]
        for level, found in kinds.items()
    }


def _form_of(catalogue: dict, code: str | None) -> dict:
    """The form's values: the item `code` as published, or an empty item."""
    entry = next((e for e in catalogue["entries"] if e["code"] == code), None)
    if entry is None:
        return {"code": code or "", "public": True, "based_on": catalogue["version"]}
    form = {
        "code": entry["code"],
        "name": entry["name"],
        "category_name": catalogue["categories"].get(entry["code"][:2], ""),
        "on_site_allowed": entry["on_site_allowed"],
        "public": entry["public"],
        "based_on": catalogue["version"],
    }
    for level, kind in entry["owners"].items():
        form[f"owner_{level}"] = kind
    for urgency in URGENCIES:
        for stage, hours in entry["time_limits"][urgency].items():
            form[f"{urgency}_{stage}"] = f"{hours:g}"
    return form


def _posted_form() -> dict:
    form = {name: value.strip() for name, value in request.form.items() if name != "csrf_token"}
    form["on_site_allowed"] = "on_site_allowed" in request.form
    form["public"] = "public" in request.form
    return form


def _entry(form: dict) -> dict:
    """The item as the API's model checks it; FormError on the form's field."""
    data = {
        "code": form.get("code", ""),
        "name": form.get("name", ""),
        "owners": {
            level: form[f"owner_{level}"]
            for level in labels.CENTRE_LEVELS
            if form.get(f"owner_{level}")
        },
        "on_site_allowed": form["on_site_allowed"],
        "public": form["public"],
        "time_limits": {
            urgency: {stage: form.get(f"{urgency}_{stage}", "") for stage in labels.STAGES}
            for urgency in URGENCIES
        },
    }
    try:
        entry = NewCatalogueEntry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = form_field(first.get("loc") or ())
        if field == "owners":
            message = _("Choose a department for at least one level.")
            raise FormError("owner_village", message) from None
        raise FormError(field, problem_message(first)) from None
    return entry.model_dump(mode="json", by_alias=True)


def _published(catalogue: dict, entry: dict, category_name: str) -> dict:
    """The next version's document: the catalogue with `entry` added or replaced."""
    entries = [e for e in catalogue["entries"] if e["code"] != entry["code"]]
    entries.append(entry)
    entries.sort(key=lambda e: e["code"])
    categories = {**catalogue["categories"], entry["code"][:2]: category_name}
    return {"categories": categories, "entries": entries}


def _service_message(field: str, message: str) -> str:
    if field.startswith("urgent_"):
        return _("No longer than the normal limit.")
    if field.startswith("owner_"):
        return _("No such department kind.")
    return message


def _render(catalogue: dict, form: dict, errors=None, status: int = 200, stale=None):
    known = {entry["code"] for entry in catalogue["entries"]}
    return (
        render_template(
            "admin/catalogue_item.html",
            form=form,
            errors=errors or {},
            stale=stale,
            changing=form.get("code") in known,
            kinds=_department_kinds(),
            levels=labels.CENTRE_LEVELS,
            stages=labels.STAGES,
            urgencies=labels.URGENCIES,
        ),
        status,
    )


@blueprint.get("/item")
@requires_roles(roles.ADMIN)
def item():
    """The form: `?code=` an item to change, none for a new one."""
    catalogue = current_page().rpc(EVENTS, "catalogue", None, False)
    code = request.args.get("code", "").strip() or None
    return _render(catalogue, _form_of(catalogue, code))


@blueprint.post("/item")
@requires_roles(roles.ADMIN)
def publish():
    page = current_page()
    form = _posted_form()
    catalogue = page.rpc(EVENTS, "catalogue", None, False)
    try:
        entry = _entry(form)
        # An existing category keeps its name unless the form gives another.
        category_name = form.get("category_name") or catalogue["categories"].get(entry["code"][:2])
        if not category_name:
            raise FormError("category_name", _("A new category needs a name."))
    except FormError as error:
        return _render(catalogue, form, error.errors, 422)
    if form.get("based_on") != str(catalogue["version"]):
        # Published meanwhile (or this form sent twice): show it again on the new version.
        form["based_on"] = catalogue["version"]
        return _render(catalogue, form, status=409, stale=catalogue["version"])
    try:
        published = page.rpc(
            EVENTS, "publish_catalogue", _published(catalogue, entry, category_name)
        )
    except FormError as error:
        field = service_field(error.field)
        return _render(catalogue, form, {field: _service_message(field, error.message)}, 422)
    except Conflict:  # another version took the number between our read and our write
        fresh = page.rpc(EVENTS, "catalogue", None, False)
        form["based_on"] = fresh["version"]
        return _render(fresh, form, status=409, stale=fresh["version"])
    return redirect(url_for("ui.admin.setup", published=published["version"]))
