"""Route family: population (being written)."""

from __future__ import annotations

from flask import Blueprint

from services.gateway.api import Api


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("population", __name__, url_prefix="/api/v1")
    return blueprint
