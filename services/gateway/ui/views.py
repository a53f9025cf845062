"""Sign-in, sign-out and the home page (who you are, your area, your pages)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from gridwork_common.service_names import POPULATION
from services.gateway.problems import ApiProblem
from services.gateway.ratelimits import client_address
from services.gateway.ui.navigation import sections_for
from services.gateway.ui.pages import current_page
from services.gateway.ui.security import safe_next

log = logging.getLogger("gridwork.gateway")
MAX_USERNAME = 64
MAX_PASSWORD = 200


def install(blueprint: Blueprint) -> None:
    @blueprint.context_processor
    def signed_in_context():
        page = g.get("ui_page")
        return {"ui_page": page, "navigation": sections_for(page.caller.roles) if page else []}

    @blueprint.get("/login")
    def login():
        if session.get("user"):
            return redirect(safe_next(request.args.get("next")))
        return render_template("ui/login.html", next=request.args.get("next", ""))

    @blueprint.post("/login")
    def login_submit():
        username = request.form.get("username", "").strip()[:MAX_USERNAME]
        password = request.form.get("password", "")[:MAX_PASSWORD]
        target = request.form.get("next", "")
        if not username or not password:
            return _login_refused(username, target, _("Enter your username and password."), 422)
        identity = current_app.extensions["identity"]()
        try:
            user = identity.verify(username, password, client_address())
        except ApiProblem as problem:
            if problem.status == 401:
                return _login_refused(username, target, _("Wrong username or password."), 401)
            if problem.status == 429:
                message = _(
                    "Too many failed logins. Try again in %(minutes)d minutes.",
                    minutes=_minutes(problem),
                )
                return _login_refused(username, target, message, 429, problem.headers)
            raise  # 503: the store did not answer (the error page)
        _announce_login(user)
        session.clear()
        session.renew()  # a new key: one known before sign-in is worth nothing
        session["user"] = user["_id"]
        session["signed_in_at"] = int(current_app.extensions["system_clock"]().timestamp())
        return redirect(safe_next(target))

    @blueprint.post("/logout")
    def logout():
        session.end()
        return redirect(url_for("ui.login"))

    @blueprint.get("/")
    def home():
        page = current_page()
        area = (
            page.rpc(POPULATION, "get_territory", page.caller.scope) if page.caller.scope else None
        )
        return render_template(
            "ui/home.html",
            area=area,
            sections=sections_for(page.caller.roles),
        )


def _login_refused(username: str, target: str, message: str, status: int, headers=None):
    page = render_template("ui/login.html", username=username, next=target, error=message)
    return page, status, headers or {}


def _minutes(problem: ApiProblem) -> int:
    seconds = int(problem.headers.get("Retry-After", "60"))
    return max(1, -(-seconds // 60))


def _announce_login(user) -> None:
    """The login counts in the account activity like an API login (assessment reads it)."""
    activity = current_app.extensions["activity"]
    try:
        activity.outbox().run(lambda staged: activity.announce_login(staged, user))
    except Exception:  # a statistic: never refuse the login for it
        log.warning("login activity not recorded", exc_info=True)
