"""The map's patrol layer: a month's patrol tracks (巡查轨迹) under the caller's territory,
as GeoJSON for `static/patrol_tracks.js`, which draws them on the map page as a layer the
user can switch off. Kept apart from grid_map.py: the map page only links the script and
names this address."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request
from flask_babel import gettext as _

from gridwork_common.clock import CHINA_TIME
from gridwork_common.service_names import POPULATION
from services.gateway.ui.grid_map import MAP_ROLES
from services.gateway.ui.pages import PageNotFound, current_page, requires_roles

blueprint = Blueprint("patrol_tracks", __name__, url_prefix="/map")

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def this_month() -> str:
    return current_app.extensions["clock"]().astimezone(CHINA_TIME).strftime("%Y-%m")


@blueprint.get("/patrols.geojson")
@requires_roles(*MAP_ROLES)
def tracks():
    """The patrols of `?month=` (the map page passes its own `?month=`; default: this month,
    China time) with a track, newest
    first, each a LineString with its worker, times, distance and flags."""
    page = current_page()
    if not page.caller.scope:
        raise PageNotFound()
    month = request.args.get("month", "")
    if not MONTH.match(month):
        month = this_month()
    layer = page.rpc(POPULATION, "patrol_tracks", page.caller.scope, month)
    layer["labels"] = {"layer": _("Patrol tracks"), "flagged": _("Flagged patrol")}
    response = jsonify(layer)
    response.mimetype = "application/geo+json"
    response.cache_control.no_store = True
    return response
