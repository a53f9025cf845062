"""Administration pages (administrators only, as the API's routes): users, their roles
and scope; the catalogue (its versions; a new one is published in admin_catalogue.py) and
the deadline policy; the working calendar's holiday notices; webhook subscriptions and
their dead letters; departments' own RabbitMQ users (listed: they are created and revoked
through the API, which shows a password once).

Users and webhooks live in the gateway's own store (the same `Identity` and `Webhooks`
the /api/v1/users and /api/v1/subscriptions routes use); the catalogue, policy and
calendar are the events service's, called with the administrator's context. Forms are
checked by the API's own request models (admin_forms.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gridwork_common import roles
from gridwork_common.service_names import EVENTS
from services.gateway.auth import ASSIGNABLE_ROLES, render_user
from services.gateway.problems import ApiProblem
from services.gateway.routes.amqp_accounts import department_accounts
from services.gateway.routes.calendar import NewHolidayNotice
from services.gateway.routes.identity import NewUser, UserChanges
from services.gateway.routes.incidents.county_setup import DeadlinePolicyChanges
from services.gateway.store import gateway_db
from services.gateway.ui.admin_forms import form_error, lines, validated
from services.gateway.ui.pages import FormError, PageNotFound, current_page, requires_roles
from services.gateway.webhooks import Webhooks, render_subscription

blueprint = Blueprint("admin", __name__, url_prefix="/admin")
ADMIN = roles.ADMIN
POLICY_FIELDS = ("auto_escalate_after_hours", "duplicate_radius_m", "duplicate_window_hours")


def _identity():
    return current_app.extensions["identity"]()


def _webhooks() -> Webhooks:
    return Webhooks(
        gateway_db(current_app.config["GRIDWORK_SETTINGS"]),
        clock=current_app.extensions["system_clock"],
    )


def _optional(name: str) -> str | None:
    return request.form.get(name, "").strip() or None


@blueprint.get("")
@requires_roles(ADMIN)
def index():
    return render_template("admin/index.html")


# ------------------------------------------------------------------------------ users


@blueprint.get("/users")
@requires_roles(ADMIN)
def users(errors=None, form=None, status=200):
    return (
        render_template(
            "admin/users.html",
            users=_identity().list_users(),
            assignable=ASSIGNABLE_ROLES,
            errors=errors or {},
            form=form or {},
        ),
        status,
    )


@blueprint.post("/users")
@requires_roles(ADMIN)
def create_user():
    form = {
        "username": request.form.get("username", "").strip(),
        "password": request.form.get("password", ""),
        "name": _optional("name"),
        "roles": request.form.getlist("roles"),
        "scope": _optional("scope"),
        "department": _optional("department"),
    }
    try:
        body = validated(NewUser, form)
        _identity().create_user(
            body.username, body.password, list(body.roles), body.scope, body.department, body.name
        )
    except FormError as error:
        return users(error.errors, {**form, "password": ""}, 422)
    except ApiProblem as problem:
        return users(form_error(problem).errors, {**form, "password": ""}, 422)
    return redirect(url_for("ui.admin.users", created=body.username))


def _user(username: str) -> dict:
    try:
        return _identity().user(username)
    except ApiProblem as problem:
        if problem.status == 404:
            raise PageNotFound() from None
        raise


@blueprint.get("/users/<username>")
@requires_roles(ADMIN)
def user(username, errors=None, status=200):
    return (
        render_template(
            "admin/user.html",
            account=render_user(_user(username)),
            assignable=ASSIGNABLE_ROLES,
            errors=errors or {},
        ),
        status,
    )


@blueprint.post("/users/<username>")
@requires_roles(ADMIN)
def change_user(username):
    _user(username)
    changes = {
        "name": _optional("name"),
        "roles": request.form.getlist("roles"),
        "scope": _optional("scope"),
        "department": _optional("department"),
        "disabled": request.form.get("disabled") == "on",
    }
    try:
        validated(UserChanges, changes)
        _identity().update_user(username, changes)  # roles/scope/disabled end its sessions
    except FormError as error:
        return user(username, error.errors, 422)
    except ApiProblem as problem:
        return user(username, form_error(problem).errors, 422)
    return redirect(url_for("ui.admin.user", username=username, saved=1))


# ------------------------------------------------------- catalogue and deadline policy


@blueprint.get("/setup")
@requires_roles(ADMIN)
def setup(errors=None, form=None, status=200):
    page = current_page()
    return (
        render_template(
            "admin/setup.html",
            catalogue=page.rpc(EVENTS, "catalogue", None, False),
            versions=page.rpc(EVENTS, "catalogue_versions"),
            policy=form or page.rpc(EVENTS, "policy"),
            policy_fields=POLICY_FIELDS,
            errors=errors or {},
        ),
        status,
    )


@blueprint.post("/deadline-policy")
@requires_roles(ADMIN)
def deadline_policy():
    form = {name: request.form.get(name, "").strip() for name in POLICY_FIELDS}
    try:
        # The form shows every setting: one left empty was erased, not "keep as it is"
        # (the API's meaning of a setting not given), so it is named, not silently kept.
        for name in POLICY_FIELDS:
            if not form[name]:
                raise FormError(name, _("Required."))
        changes = validated(DeadlinePolicyChanges, form)
        current_page().rpc(EVENTS, "set_policy", changes.model_dump(exclude_none=True))
    except FormError as error:
        return setup(error.errors, form, 422)
    return redirect(url_for("ui.admin.setup", saved=1))


# ------------------------------------------------------------------ holiday notices


@blueprint.get("/calendar")
@requires_roles(ADMIN)
def calendar(errors=None, form=None, status=200):
    return (
        render_template(
            "admin/calendar.html",
            notices=current_page().rpc(EVENTS, "calendar_notices"),
            errors=errors or {},
            form=form or {},
        ),
        status,
    )


@blueprint.post("/calendar")
@requires_roles(ADMIN)
def load_notice():
    form = {
        name: request.form.get(name, "").strip()
        for name in ("year", "holidays", "makeup_workdays", "reference")
    }
    try:
        if not (form["year"].isdigit() and len(form["year"]) == 4):
            raise FormError("year", _("Give a year written YYYY."))
        notice = validated(
            NewHolidayNotice,
            {
                "holidays": lines(form["holidays"]),
                "makeup_workdays": lines(form["makeup_workdays"]),
                "reference": form["reference"] or None,
            },
        ).model_dump(mode="json")
        if notice["reference"] is None:
            del notice["reference"]
        current_page().rpc(EVENTS, "put_calendar_notice", int(form["year"]), notice)
    except FormError as error:
        return calendar(error.errors, form, 422)
    return redirect(url_for("ui.admin.calendar", loaded=form["year"]))


# ------------------------------------------------------------------------- webhooks


@blueprint.get("/webhooks")
@requires_roles(ADMIN)
def webhooks():
    return render_template("admin/webhooks.html", subscriptions=_webhooks().subscriptions(None))


def _subscription(subscription_id: str) -> dict:
    try:
        return render_subscription(_webhooks().subscription(subscription_id, None))
    except LookupError:
        raise PageNotFound() from None


@blueprint.get("/webhooks/<subscription_id>")
@requires_roles(ADMIN)
def dead_letters(subscription_id):
    subscription = _subscription(subscription_id)
    return render_template(
        "admin/dead_letters.html",
        subscription=subscription,
        deliveries=_webhooks().dead_letters(subscription_id),
    )


@blueprint.post("/webhooks/<subscription_id>/dead-letters/<delivery_id>/replay")
@requires_roles(ADMIN)
def replay(subscription_id, delivery_id):
    _subscription(subscription_id)
    try:
        _webhooks().replay(subscription_id, delivery_id)
    except LookupError:  # sent again already (a second click, another administrator)
        answer = {"subscription_id": subscription_id, "not_dead": delivery_id}
        return redirect(url_for("ui.admin.dead_letters", **answer), 303)
    return redirect(url_for("ui.admin.dead_letters", subscription_id=subscription_id, replayed=1))


# -------------------------------------------------------------------- AMQP accounts


@blueprint.get("/amqp-accounts")
@requires_roles(ADMIN)
def amqp_accounts():
    return render_template("admin/amqp_accounts.html", accounts=department_accounts().accounts())
