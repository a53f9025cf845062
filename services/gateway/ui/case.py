"""The case page (/cases/<id>): timeline, before/after photos, the grid map, possible
duplicates with merge, and a form for every action this user may take now.

It calls the RPCs the API's routes call (routes/incidents/, routes/media.py,
routes/population/) with the signed-in caller: the events service decides what the
user may see (a case out of scope is NotFound → the 404 page, as in the API) and which
actions they may take (`allowed_actions`). Every form carries the version it was shown
with and a command key of its own (the API's Idempotency-Key): a case changed meanwhile
is shown again, fresh, with a message, and a form sent twice acts once.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gridwork_common import roles
from gridwork_common.service_names import EVENTS, MEDIA, POPULATION
from services.gateway.routes.media import DIRECT_UPLOAD_BYTES
from services.gateway.ui.case_actions import (
    FORMS,
    FieldProblems,
    command_fields,
    rejection_label,
    state_label,
    step_label,
)
from services.gateway.ui.pages import (
    Conflict,
    FormError,
    PageForbidden,
    PageNotFound,
    current_page,
)

blueprint = Blueprint("case", __name__, url_prefix="/cases")

OPEN_STATES = ("reported", "accepted", "registered", "dispatched", "handling", "returned",
               "awaiting_verification", "verified", "suspended")  # fmt: skip
MERGERS = (roles.CENTRE_OPERATOR, roles.ADMIN)  # the API's merge route: CENTRE
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_PHOTOS = 5


@blueprint.app_template_filter("case_state")
def case_state(state):
    return state_label(state)


@blueprint.app_template_filter("case_rejection")
def case_rejection(reason):
    return rejection_label(reason)


@blueprint.app_template_filter("case_step")
def case_step(action):
    return step_label(action)


@blueprint.get("/<case_id>")
def view(case_id: str):
    done = request.args.get("done")
    message = _("Done: %(action)s.", action=FORMS[done].label) if done in FORMS else None
    return render_case(case_id, notice=message)


@blueprint.post("/<case_id>/act/<action>")
def act(case_id: str, action: str):
    form = FORMS.get(action)
    if form is None:
        abort(404)
    page = current_page()
    version = _version(request.form.get("version"))
    key = request.form.get("command_key") or ""
    try:
        fields = command_fields(form, request.form)
        if form.photos:
            fields["media_ids"] = _upload_photos(case_id, "feedback")
    except FieldProblems as problems:
        return _form_again(case_id, action, problems.errors)
    try:
        page.rpc(EVENTS, "act", case_id, action, version, key, fields)
    except Conflict as conflict:
        return _changed_meanwhile(case_id, version, conflict)
    except FormError as error:
        return _form_again(case_id, action, error.errors)
    return redirect(url_for("ui.case.view", case_id=case_id, done=action), 303)


@blueprint.post("/<case_id>/merge")
def merge(case_id: str):
    page = current_page()
    duplicate = request.form.get("duplicate_id") or ""
    version = _version(request.form.get("version"))
    try:
        page.rpc(EVENTS, "merge", case_id, duplicate, version, request.form.get("command_key"))
    except Conflict as conflict:
        return _changed_meanwhile(case_id, version, conflict)
    except FormError as error:
        return render_case(case_id, alert=error.message, status=422)
    return redirect(url_for("ui.case.view", case_id=case_id, merged=duplicate), 303)


@blueprint.post("/<case_id>/photos/<media_id>/verify")
def verify_photo(case_id: str, media_id: str):
    page = current_page()
    page.rpc(EVENTS, "get_incident", case_id)  # the case first: out of scope is 404
    result = page.rpc(MEDIA, "verify_integrity", media_id)
    if result["intact"]:
        return render_case(case_id, notice=_("The photo's bytes match their SHA-256."))
    return render_case(case_id, alert=_("The photo's bytes no longer match their SHA-256."))


# ----------------------------------------------------------------------------- page


def render_case(case_id, *, notice=None, alert=None, errors=None, failed=None, status=200):
    page = current_page()
    case = page.rpc(EVENTS, "get_incident", case_id)
    grid = _grid(case["grid_code"])
    context = {
        "case": case,
        "timeline": page.rpc(EVENTS, "timeline", case_id),
        "photos": _photos(case_id),
        "grid": grid,
        "duplicates": _duplicates(case),
        "forms": [FORMS[action] for action in case["allowed_actions"] if action in FORMS],
        "departments": _departments(case),
        "names": _names(case),
        "command_key": uuid.uuid4().hex,
        "notice": notice,
        "alert": alert,
        "errors": errors or {},
        "failed": failed,
        "values": request.form if failed else {},
        "merged": request.args.get("merged"),
        "map_data": json.dumps(
            {"geometry": (grid or {}).get("geometry"), "location": case.get("location")}
        ),
    }
    return render_template("case/case.html", **context), status


def _form_again(case_id: str, action: str, errors: dict):
    alert = _("Check the form: %(action)s was not done.", action=FORMS[action].label)
    shown = {spec.name for spec in FORMS[action].fields} | {"photos"}
    others = [message for name, message in errors.items() if name not in shown]
    if others:  # what the service named a field the form does not have
        alert = " ".join([alert, *others])
    return render_case(case_id, alert=alert, errors=errors, failed=action, status=422)


def _changed_meanwhile(case_id: str, version: int, conflict: Conflict):
    if conflict.kind == "StaleVersion":
        alert = _(
            "This case was changed by someone else after you opened it (you saw version "
            "%(version)d). Here it is as it is now: check it and act again.",
            version=version,
        )
    else:
        alert = _("This step is no longer possible: the case has moved on. Here it is now.")
    return render_case(case_id, alert=alert, status=409)


def _version(raw) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        abort(400)


def _photos(case_id: str) -> dict:
    page = current_page()
    try:
        pairs = page.rpc(MEDIA, "pairs", case_id)
    except (PageNotFound, PageForbidden):
        return {"before": [], "after": []}
    return {side: [_photo(media) for media in pairs[side]] for side in ("before", "after")}


def _photo(media: dict) -> dict:
    page = current_page()
    # A photo's thumbnail is made just after it is stored: a placeholder until then.
    pending = (media.get("thumbnail") or {}).get("status") == "pending"
    shown = {"media": media, "thumbnail": None, "original": None, "pending": pending}
    if media.get("corrupted"):
        return shown  # the service refuses links to bytes that no longer match
    try:
        shown["original"] = page.rpc(MEDIA, "download_link", media["id"], "original")["url"]
        if media.get("kind") == "photo" and not pending:
            shown["thumbnail"] = page.rpc(MEDIA, "download_link", media["id"], "thumbnail")["url"]
    except (Conflict, FormError):
        pass
    return shown


def _grid(grid_code: str) -> dict | None:
    try:
        return current_page().rpc(POPULATION, "get_territory", grid_code)
    except (PageNotFound, PageForbidden):
        return None


def _duplicates(case: dict) -> list[dict]:
    page = current_page()
    if case["state"] not in OPEN_STATES:
        return []
    may_merge = page.has_role(*MERGERS)
    found = []
    for candidate in page.rpc(EVENTS, "possible_duplicates", case["id"]):
        entry = {"case": candidate, "version": None}
        if may_merge:
            with contextlib.suppress(PageNotFound):
                entry["version"] = page.rpc(EVENTS, "get_incident", candidate["id"])["version"]
        found.append(entry)
    return found


def _departments(case: dict) -> list[dict]:
    if "dispatch" not in case["allowed_actions"]:
        return []
    return current_page().rpc(EVENTS, "departments", case["owning_centre"])


def _names(case: dict) -> dict:
    """The case's category and department by name (their codes when not found)."""
    page = current_page()
    catalogue = page.rpc(EVENTS, "catalogue", case.get("catalogue_version"))
    names = {entry["code"]: entry["name"] for entry in catalogue.get("entries", [])}
    if case.get("department"):
        departments = page.rpc(EVENTS, "departments", case["owning_centre"])
        names.update({department["code"]: department["name"] for department in departments})
    return names


def _upload_photos(case_id: str, purpose: str) -> list[str]:
    """After-photos sent with the form, stored through the media service as the API's
    multipart fallback does (POST /api/v1/media): checked, hashed, owned by the case."""
    files = [upload for upload in request.files.getlist("photos") if upload.filename]
    if len(files) > MAX_PHOTOS:
        raise FieldProblems({"photos": _("At most %(count)d photos.", count=MAX_PHOTOS)})
    media_ids = []
    for upload in files:
        data = upload.read(DIRECT_UPLOAD_BYTES + 1)
        if upload.mimetype not in PHOTO_TYPES or not data or len(data) > DIRECT_UPLOAD_BYTES:
            raise FieldProblems({"photos": _("A JPEG, PNG or WebP photo of at most 10 MB.")})
        owner = {"kind": "incident", "id": case_id}
        encoded = base64.b64encode(data).decode("ascii")
        try:
            stored = current_page().rpc(MEDIA, "upload", upload.mimetype, purpose, owner, encoded)
        except FormError as error:
            raise FieldProblems({"photos": error.message}) from None
        media_ids.append(stored["id"])
    return media_ids
