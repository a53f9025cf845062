"""Third-party browser libraries (package.json, installed by `npm ci` into node_modules/,
never committed), served at /ui/vendor/<library>/<file> from their dist folders only."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, abort, send_from_directory

REPO_ROOT = Path(__file__).resolve().parents[3]
# The Dockerfile copies the dist folders into the image; elsewhere npm ci's node_modules.
VENDOR_DIR = Path(os.environ.get("GATEWAY_VENDOR_DIR", REPO_ROOT / "node_modules"))
LIBRARIES = {"htmx": "htmx.org/dist", "leaflet": "leaflet/dist"}
SERVED_SUFFIXES = (".js", ".css", ".png", ".svg")
MAX_AGE_S = 24 * 3600


def install(blueprint: Blueprint) -> None:
    @blueprint.get("/ui/vendor/<library>/<path:name>")
    def vendor(library: str, name: str):
        folder = LIBRARIES.get(library)
        if folder is None or not name.endswith(SERVED_SUFFIXES):
            abort(404)
        # send_from_directory refuses paths that leave the folder.
        return send_from_directory(VENDOR_DIR / folder, name, max_age=MAX_AGE_S)
