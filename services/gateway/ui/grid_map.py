"""The map (一张图): the caller's grids coloured by open and overdue cases, the cases as
points, filters kept in the URL, and a grid's panel (roster, people, groups, cases).

The page is a shell; its script fetches two JSON documents from this blueprint (under
the session, like every UI route): the polygons to draw for the map's zoom and viewport
(population `map_outlines`: the grids in view, or their villages' or townships' outlines
when more than a thousand grids would be, simplified to half a pixel and precomputed per
territory version, so a county of 5,000+ grids is never sent whole) and the cases under
the filters (events `map_summary`). Clicking a grid loads
its panel as an htmx partial. Every call carries the caller's context: the services
check roles and scope, and what is out of scope is "not found".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from gridwork_common import roles
from gridwork_common.clock import CHINA_TIME
from gridwork_common.service_names import EVENTS, POPULATION
from services.gateway.ui import labels
from services.gateway.ui.pages import FormError, PageNotFound, current_page, requires_roles

blueprint = Blueprint("map", __name__, url_prefix="/map")

MAP_ROLES = (
    roles.CENTRE_OPERATOR,
    roles.LEADER,
    roles.GRID_LEADER,
    roles.GRID_WORKER,
    roles.ADMIN,
)
CATEGORY = re.compile(r"^[0-9]{2}\.[0-9]{2}$")
GRID_CODE = re.compile(r"^[0-9]{15}$")
# Zoom levels the population service precomputes outlines for; outside them the nearest.
MIN_ZOOM, MAX_ZOOM = 6, 17
PANEL_CASES = 20
CACHE_SECONDS = 120


def viewport(value: str | None) -> list[float] | None:
    """`?bbox=west,south,east,north` as four numbers, or None (the service checks the
    ranges); FormError when it is not four numbers."""
    if not value:
        return None
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise FormError("bbox", "must be four numbers: west, south, east, north")
    return numbers


@dataclass
class MapFilters:
    """The filters of the URL query (?category=&state=&urgency=&from=&to=), checked."""

    category: str = ""
    state: str = ""
    urgency: str = ""
    date_from: date | None = None
    date_to: date | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, args) -> MapFilters:
        filters = cls()
        category = args.get("category", "").strip()
        if category and not CATEGORY.match(category):
            filters.errors["category"] = _("Choose a category from the list.")
        else:
            filters.category = category
        state = args.get("state", "")
        if state and state not in labels.CASE_STATES:
            filters.errors["state"] = _("Choose a state from the list.")
        else:
            filters.state = state
        urgency = args.get("urgency", "")
        if urgency and urgency not in labels.URGENCIES:
            filters.errors["urgency"] = _("Choose an urgency from the list.")
        else:
            filters.urgency = urgency
        for name, attribute in (("from", "date_from"), ("to", "date_to")):
            value = args.get(name, "").strip()
            if not value:
                continue
            try:
                setattr(filters, attribute, date.fromisoformat(value))
            except ValueError:
                filters.errors[name] = _("Enter a date as YYYY-MM-DD.")
        if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
            filters.errors["to"] = _("The end of the period is before its start.")
            filters.date_to = None
        return filters

    def query(self) -> dict[str, str]:
        """The URL query reproducing these filters."""
        values = {
            "category": self.category,
            "state": self.state,
            "urgency": self.urgency,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {name: value for name, value in values.items() if value}

    def service_filters(self) -> dict:
        """The events service's filters: whole days in China time, `to` included."""
        filters = {
            name: value
            for name, value in (
                ("category", self.category),
                ("state", self.state),
                ("urgency", self.urgency),
            )
            if value
        }
        if self.date_from:
            filters["reported_from"] = _china_midnight(self.date_from).isoformat()
        if self.date_to:
            filters["reported_to"] = _china_midnight(self.date_to + timedelta(days=1)).isoformat()
        return filters


def _china_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), CHINA_TIME)


def _categories() -> list[dict]:
    catalogue = current_page().rpc(EVENTS, "catalogue")
    return [
        {"code": entry["code"], "name": entry["name"]}
        for entry in sorted(catalogue.get("entries", []), key=lambda entry: entry["code"])
    ]


@blueprint.get("")
@requires_roles(*MAP_ROLES)
def index():
    page = current_page()
    filters = MapFilters.from_query(request.args)
    area = page.rpc(POPULATION, "get_territory", page.caller.scope) if page.caller.scope else None
    wall = request.args.get("wall") == "1"
    return render_template(
        "grid_map/map.html",
        area=area,
        filters=filters,
        categories=_categories(),
        states=labels.CASE_STATES,
        urgencies=labels.URGENCIES,
        wall=wall,
        wall_url=url_for("ui.map.index", **filters.query(), wall="1"),
        cases_url=url_for("ui.map.cases", **filters.query()),
        shapes_url=url_for("ui.map.shapes"),
        panel_url=url_for("ui.map.grid_panel", code="000000000000000"),
    ), (422 if filters.errors else 200)


@blueprint.get("/shapes.geojson")
@requires_roles(*MAP_ROLES)
def shapes():
    """What the map draws at `?zoom=` within `?bbox=` (the whole scope without it): the
    caller's grids, or their villages' or townships' outlines when too many grids are in
    view (population `map_outlines`, precomputed per territory version and zoom)."""
    page = current_page()
    if not page.caller.scope:
        raise PageNotFound()
    zoom = min(MAX_ZOOM, max(MIN_ZOOM, request.args.get("zoom", 12, type=int)))
    try:
        bbox = viewport(request.args.get("bbox"))
        answer = page.rpc(POPULATION, "map_outlines", page.caller.scope, zoom, bbox)
    except FormError as error:  # a viewport that is not one (the script never sends it)
        return jsonify({"errors": error.errors}), 400
    response = jsonify(
        {
            "type": "FeatureCollection",
            "level": answer["level"],
            "grids": answer["grids"],
            "bbox": answer["bbox"],
            "features": [
                {
                    "type": "Feature",
                    "properties": {
                        "code": outline["code"],
                        "name": outline["name"],
                        "level": outline["level"],
                        "grids": outline["grids"],
                    },
                    "geometry": outline["geometry"],
                }
                for outline in answer["outlines"]
            ],
        }
    )
    response.mimetype = "application/geo+json"
    # The same URL answers the same to the same caller until an import: the browser may
    # keep it a while, but not for the next user signing in on it (a new session cookie).
    response.set_etag(f"{answer['version']}-{page.caller.scope}")
    response.vary.add("Cookie")
    response.cache_control.private = True
    response.cache_control.max_age = CACHE_SECONDS
    return response.make_conditional(request)


@blueprint.get("/cases.json")
@requires_roles(*MAP_ROLES)
def cases():
    """Open and overdue counts per grid and the cases as points, under the filters."""
    page = current_page()
    if not page.caller.scope:
        raise PageNotFound()
    filters = MapFilters.from_query(request.args)
    summary = page.rpc(EVENTS, "map_summary", page.caller.scope, filters.service_filters())
    names = {entry["code"]: entry["name"] for entry in _categories()}
    for case in summary["cases"]:
        case["category_name"] = names.get(case["category"], case["category"])
        case["state_label"] = labels.label(labels.CASE_STATES, case["state"])
        case["url"] = f"/cases/{case['id']}"
    summary["labels"] = {"overdue": _("Overdue"), "open_case": _("Case details")}
    response = jsonify(summary)
    response.cache_control.no_store = True
    return response


@blueprint.get("/grids/<code>")
@requires_roles(*MAP_ROLES)
def grid_panel(code):
    """A grid's panel (htmx partial): code and name, its 1+1+N roster, residents and
    households, special-group members by risk level, open cases."""
    if not GRID_CODE.match(code):
        raise PageNotFound()
    page = current_page()
    grid = page.rpc(POPULATION, "get_territory", code)  # NotFound when out of scope
    if grid.get("level") != "grid":
        raise PageNotFound()
    staff = page.rpc(POPULATION, "grid_staff", code)
    statistics = page.rpc(POPULATION, "statistics", code)
    summary = page.rpc(EVENTS, "map_summary", code, {})
    counts = summary["grids"].get(code, {"open": 0, "overdue": 0})
    names = {entry["code"]: entry["name"] for entry in _categories()}
    return render_template(
        "grid_map/panel.html",
        grid=grid,
        staff=[
            {**member, "role_label": labels.label(labels.STAFF_ROLES, member["role"])}
            for member in staff
        ],
        statistics=statistics,
        groups=_group_rows(statistics.get("group_members")),
        risk_levels=labels.RISK_LEVELS,
        counts=counts,
        cases=summary["cases"][:PANEL_CASES],
        more_cases=max(0, len(summary["cases"]) - PANEL_CASES),
        category_names=names,
        states=labels.CASE_STATES,
    )


def _group_rows(group_members: dict | None) -> list[dict] | None:
    """One row per group with members: its label and the count per risk level. None when
    the caller may not read groups (the service leaves them out)."""
    if group_members is None:
        return None
    return [
        {
            "label": labels.label(labels.GROUPS, group),
            "by_risk": {risk: by_risk.get(risk, 0) for risk in labels.RISK_LEVELS},
            "total": sum(by_risk.values()),
        }
        for group, by_risk in sorted(group_members.items())
        if sum(by_risk.values())
    ]
