"""The map (一张图): the caller's grids coloured by open and overdue cases, the cases as
points, filters kept in the URL, and a grid's panel (roster, people, groups, cases).

The page is a shell; its script fetches two JSON documents from this blueprint (under
the session, like every UI route): the grids' polygons simplified for the map's zoom
(population `grid_shapes`, so a county of thousands of grids is never sent at survey
precision) and the cases under the filters (events `map_summary`). Clicking a grid loads
its panel as an htmx partial. Every call carries the caller's context: the services
check roles and scope, and what is out of scope is "not found".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from gridwork_common import roles
from gridwork_common.clock import CHINA_TIME
from services.gateway.ui import labels
from services.gateway.ui.pages import PageNotFound, current_page, requires_roles

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
# Zoom levels the script asks geometry for; outside them the nearest is used.
MIN_ZOOM, MAX_ZOOM = 6, 18
FULL_PRECISION_ZOOM = 17  # from here on a pixel is under a metre: nothing to drop
MAX_TOLERANCE = 0.01  # degrees, the population service's bound
PANEL_CASES = 20
CACHE_SECONDS = 120


def tolerance_for(zoom: int) -> float:
    """Half a screen pixel at `zoom` (Web Mercator, 256-pixel tiles), in degrees: what
    the map can show, so dropping finer vertices changes nothing visible."""
    if zoom >= FULL_PRECISION_ZOOM:
        return 0.0
    pixel = 360.0 / (256 * 2**zoom)
    return min(MAX_TOLERANCE, pixel / 2)


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
    catalogue = current_page().rpc("events", "catalogue")
    return [
        {"code": entry["code"], "name": entry["name"]}
        for entry in sorted(catalogue.get("entries", []), key=lambda entry: entry["code"])
    ]


@blueprint.get("")
@requires_roles(*MAP_ROLES)
def index():
    page = current_page()
    filters = MapFilters.from_query(request.args)
    area = page.rpc("population", "get_territory", page.caller.scope) if page.caller.scope else None
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
        grids_url=url_for("ui.map.grids"),
        panel_url=url_for("ui.map.grid_panel", code="000000000000000"),
    ), (422 if filters.errors else 200)


@blueprint.get("/grids.geojson")
@requires_roles(*MAP_ROLES)
def grids():
    """The caller's grids as GeoJSON, simplified for `?zoom=`."""
    page = current_page()
    if not page.caller.scope:
        raise PageNotFound()
    zoom = min(MAX_ZOOM, max(MIN_ZOOM, request.args.get("zoom", 12, type=int)))
    shapes = page.rpc("population", "grid_shapes", page.caller.scope, tolerance_for(zoom))
    response = jsonify(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"code": grid["code"], "name": grid["name"]},
                    "geometry": grid["geometry"],
                }
                for grid in shapes
            ],
        }
    )
    response.mimetype = "application/geo+json"
    response.cache_control.private = True
    response.cache_control.max_age = CACHE_SECONDS
    return response


@blueprint.get("/cases.json")
@requires_roles(*MAP_ROLES)
def cases():
    """Open and overdue counts per grid and the cases as points, under the filters."""
    page = current_page()
    if not page.caller.scope:
        raise PageNotFound()
    filters = MapFilters.from_query(request.args)
    summary = page.rpc("events", "map_summary", page.caller.scope, filters.service_filters())
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
    grid = page.rpc("population", "get_territory", code)  # NotFound when out of scope
    if grid.get("level") != "grid":
        raise PageNotFound()
    staff = page.rpc("population", "grid_staff", code)
    statistics = page.rpc("population", "statistics", code)
    summary = page.rpc("events", "map_summary", code, {})
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
