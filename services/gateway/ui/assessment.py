"""Assessment pages: a level's scorecards for a chosen period (ranks, stars, the bottom
of the ranking), one territory node's indicators over the months as an SVG chart, the
integrity flags for supervisors and the county's monthly bulletin.

Every page calls the assessment service's RPCs the /api/v1/assessment routes call, with
the caller's context: the service decides what is in scope (a scoped caller sees the
part of the county-wide ranking under their node; a node outside it is not found)."""

from __future__ import annotations

import re
from collections import Counter

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from gridwork_common import roles
from gridwork_common.charts import line_chart
from gridwork_common.clock import china_today
from gridwork_common.periods import MONTH_PATTERN, PERIOD_PATTERN
from gridwork_common.service_names import ASSESSMENT, POPULATION
from services.gateway.routes.assessment import READERS
from services.gateway.ui.pages import (
    Conflict,
    FormError,
    PageNotFound,
    current_page,
    requires_roles,
)

blueprint = Blueprint("assessment", __name__, url_prefix="/assessment")

LEVELS = {
    "township": _l("Townships"),
    "village": _l("Villages"),
    "grid": _l("Grids"),
    "worker": _l("Grid workers"),
    "department": _l("Departments"),
}
TERRITORY_LEVELS = ("township", "village", "grid")
CHARTED = {  # what a node's chart can show: counts, or rates (0..1, shown as %)
    "cases_reported": _l("Cases reported"),
    "cases_closed": _l("Cases closed"),
    "overdue": _l("Cases overdue"),
    "on_time_rate": _l("On-time closure rate"),
    "closure_rate": _l("Closure rate"),
    "visit_coverage": _l("Visit coverage"),
    "satisfaction": _l("Satisfaction"),
    "patrols": _l("Patrols"),
    "patrol_coverage": _l("Share of grids patrolled"),
}
SIGNALS = {  # the assessment service's integrity signals
    "reused_photo": _l("One photo used for several records"),
    "implausible_journey": _l("Visits too far apart for the time between them"),
    "many_visits_one_spot": _l("Many people visited from one spot"),
    "patrol_too_fast": _l("Patrol faster than a person walks"),
    "patrol_stationary": _l("Patrol that never left one spot"),
}
RATES = ("on_time_rate", "closure_rate", "visit_coverage", "satisfaction", "patrol_coverage")
CHART_MONTHS = (6, 12)
NAMED_AT_MOST = 30  # territory names are looked up one RPC each: only for short boards
_PERIOD = re.compile(PERIOD_PATTERN)
_MONTH = re.compile(MONTH_PATTERN)


def _last_month() -> str:
    today = china_today(current_app.extensions["clock"])
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def _checked_period(text: str, pattern: re.Pattern = _PERIOD) -> str:
    if not pattern.fullmatch(text):
        message = (
            _("Give a month like 2026-05.")
            if pattern is _MONTH
            else _(
                "Give a day (2026-05-20), week (2026-W21), month (2026-05), "
                "quarter (2026-Q2) or year (2026)."
            )
        )
        raise FormError("period", message)
    return text


def _names(codes) -> dict[str, str]:
    page = current_page()
    names = {}
    for code in list(codes)[:NAMED_AT_MOST]:
        try:
            names[code] = page.rpc(POPULATION, "get_territory", code)["name"]
        except PageNotFound:
            continue
    return names


@blueprint.get("")
@requires_roles(*READERS)
def scorecards():
    page = current_page()
    level = request.args.get("level", "township")
    if level not in LEVELS:
        level = "township"
    period = request.args.get("period", "").strip() or _last_month()
    board, published, errors = None, [], {}
    try:
        _checked_period(period)
        board = page.rpc(ASSESSMENT, "scorecards", level, period, None)
        published = page.rpc(ASSESSMENT, "published_scorecards", level, period)
    except FormError as error:
        errors = error.errors
    names = (
        _names(i["subject"] for i in board["items"]) if board and level in TERRITORY_LEVELS else {}
    )
    status = 422 if errors else 200
    return (
        render_template(
            "assessment/scorecards.html",
            levels=LEVELS,
            level=level,
            period=period,
            board=board,
            bottom=set(board["bottom"]) if board else set(),
            tied=_shared_ranks(board),
            published=published,
            names=names,
            charted=level in TERRITORY_LEVELS,
            chart_until=period[:7] if _MONTH.fullmatch(period[:7]) else None,
            county_wide=len(page.caller.scope or "") == 6,
            errors=errors,
        ),
        status,
    )


def _shared_ranks(board: dict | None) -> set[int]:
    """The ranks more than one shown subject holds (equal scores share a rank)."""
    if not board:
        return set()
    counted = Counter(item["rank"] for item in board["items"])
    return {rank for rank, count in counted.items() if count > 1}


def months_until(until: str, count: int) -> list[str]:
    year, month = (int(part) for part in until.split("-"))
    months = []
    for _step in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(months))


def _shown(indicator: str):
    if indicator in RATES:
        return lambda value: f"{100 * value:.1f}%"
    return lambda value: f"{value:g}"


@blueprint.get("/chart/<territory>")
@requires_roles(*READERS)
def chart(territory):
    """One node's indicator over the months up to `until` (one indicators RPC a month)."""
    page = current_page()
    indicator = request.args.get("indicator", "cases_reported")
    if indicator not in CHARTED:
        indicator = "cases_reported"
    count = request.args.get("months", type=int)
    count = count if count in CHART_MONTHS else CHART_MONTHS[0]
    until = request.args.get("until", "").strip() or _last_month()
    node = page.rpc(POPULATION, "get_territory", territory)  # out of scope: not found
    errors, points = {}, []
    try:
        _checked_period(until, _MONTH)
        for month in months_until(until, count):
            found = page.rpc(ASSESSMENT, "indicators", territory, month)
            value = found["rates"].get(indicator) if indicator in RATES else found.get(indicator)
            points.append((month, value))
    except FormError as error:
        errors = error.errors
    svg = ""
    if points:
        values = [v for _, v in points if v is not None]
        maximum = 1.0 if indicator in RATES else max([*values, 1])
        svg = line_chart(
            points,
            maximum=maximum,
            step=70 if count > 6 else 100,
            width=880 if count > 6 else 640,
            label=_(
                "%(indicator)s of %(name)s by month",
                indicator=CHARTED[indicator],
                name=node["name"],
            ),
            markers=True,
            shown=_shown(indicator),
        )
    return (
        render_template(
            "assessment/chart.html",
            node=node,
            indicator=indicator,
            indicators=CHARTED,
            months=count,
            month_choices=CHART_MONTHS,
            until=until,
            points=points,
            shown=_shown(indicator),
            svg=svg,
            errors=errors,
        ),
        422 if errors else 200,
    )


@blueprint.get("/integrity")
@requires_roles(roles.ADMIN, roles.LEADER, roles.CENTRE_OPERATOR)
def integrity():
    page = current_page()
    period = request.args.get("period", "").strip() or _last_month()
    flags, errors = [], {}
    try:
        flags = page.rpc(ASSESSMENT, "integrity_flags", _checked_period(period, _MONTH))
    except FormError as error:
        errors = error.errors
    return (
        render_template(
            "assessment/integrity.html",
            period=period,
            flags=flags,
            signals=SIGNALS,
            errors=errors,
        ),
        422 if errors else 200,
    )


# The bulletin is the service's own HTML document (kept as made): its body is shown inside
# this page (its headings one level down) and its CSV offered for download.
_BODY = re.compile(r"<body>(.*)</body>", re.S)


def _embedded(document: str) -> str:
    found = _BODY.search(document)
    body = found.group(1) if found else ""
    return (
        body.replace("<h2>", "<h3>")
        .replace("</h2>", "</h3>")
        .replace("<h1>", "<h2>")
        .replace("</h1>", "</h2>")
    )


@blueprint.get("/bulletin")
@requires_roles(*READERS)
def bulletin():
    page = current_page()
    period = request.args.get("period", "").strip() or _last_month()
    errors, document = {}, ""
    try:
        document = _embedded(
            page.rpc(ASSESSMENT, "bulletin", _checked_period(period, _MONTH), "html")
        )
    except FormError as error:
        errors = error.errors
    except Conflict:  # the month has not ended, or its grace days have not passed
        errors = {"period": _("The bulletin of a month is made once its grace days are over.")}
    return (
        render_template(
            "assessment/bulletin.html", period=period, document=document, errors=errors
        ),
        422 if errors else 200,
    )


@blueprint.get("/bulletin/<period>.csv")
@requires_roles(*READERS)
def bulletin_csv(period):
    if not _MONTH.fullmatch(period):
        raise PageNotFound()
    content = current_page().rpc(ASSESSMENT, "bulletin", period, "csv")
    response = Response(content, content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="bulletin-{period}.csv"'
    return response
