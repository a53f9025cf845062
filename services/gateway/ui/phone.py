"""The grid worker's phone app (/app/): an installable web app (PWA) for reports, visits,
verifications and patrols in the field, working offline (docs/phone-app.md).

The gateway serves only its shell (one page, its manifest, its service worker and icons);
everything the worker sees or sends goes through the documented `/api/v1` routes with the
browser session and its CSRF token (services/gateway/api_session.py), queued on the phone
(IndexedDB) while there is no connection.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, current_app, g, render_template, url_for
from flask_babel import gettext as _

from gridwork_common import roles
from services.gateway.ui import labels
from services.gateway.ui.pages import current_page, requires_roles
from services.gateway.ui.security import content_security_policy, photo_store_origin

blueprint = Blueprint("phone", __name__, url_prefix="/app")
FIELD_ROLES = (roles.GRID_WORKER, roles.GRID_LEADER)
SHELL_STATIC = (
    "phone/app.css",
    "phone/app.js",
    "phone/outbox.js",
    "phone/sync.js",
    "phone/screens.js",
    "phone/places.js",
    "phone/patrol.js",
    "phone/icon.svg",
)
SHELL_VENDOR = (
    ("leaflet", "leaflet.js"),
    ("leaflet", "leaflet.css"),
    ("leaflet", "images/marker-icon.png"),
    ("leaflet", "images/marker-icon-2x.png"),
    ("leaflet", "images/marker-shadow.png"),
)


@blueprint.get("/")
@requires_roles(*FIELD_ROLES)
def shell():
    page = current_page()
    # Photos go straight to the object store's upload slots (presigned PUT).
    g.content_security_policy = phone_policy()
    response = Response(render_template("phone/app.html", user=page.user, strings=app_strings()))
    # The service worker keeps its own copy for offline use; the browser's cache must
    # not hand an old page (with an old session's CSRF token) to a new session.
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/manifest.webmanifest")
def manifest():
    document = {
        "name": _("Gridwork field app"),
        "short_name": _("Gridwork"),
        "lang": "zh-CN",
        "start_url": url_for("ui.phone.shell"),
        "scope": url_for("ui.phone.shell"),
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#1d4f91",
        "icons": [
            {
                "src": url_for("ui.static", filename="phone/icon-192.png"),
                "sizes": "192x192",
                "type": "image/png",
            },
            {
                "src": url_for("ui.static", filename="phone/icon-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "any maskable",
            },
            {
                "src": url_for("ui.static", filename="phone/icon.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
            },
        ],
    }
    response = current_app.response_class(
        current_app.json.dumps(document), mimetype="application/manifest+json"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/sw.js")
def service_worker():
    """The service worker, at /app/ so its scope is the app. Its list of files to keep is
    written here, from the same names the page loads."""
    files = [url_for("ui.phone.shell"), url_for("ui.phone.manifest")]
    files += [url_for("ui.static", filename=name) for name in SHELL_STATIC]
    files += [url_for("ui.vendor", library=lib, name=name) for lib, name in SHELL_VENDOR]
    script = render_template("phone/sw.js", version=shell_version(), files=files)
    response = Response(script, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"  # a new version is found at once
    return response


@cache
def shell_version() -> str:
    """A digest of the shell's own files: the service worker keeps one cache per version
    and drops the others when a new one activates, so a changed file reaches phones
    without anyone bumping a number."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in (*SHELL_STATIC, "../templates/phone/app.html", "../templates/phone/sw.js"):
        digest.update((here / "static" / name).read_bytes())
    return digest.hexdigest()[:16]


def phone_policy() -> str:
    settings = current_app.config["GRIDWORK_SETTINGS"]
    return content_security_policy(settings).replace(
        "connect-src 'self'", f"connect-src 'self' {photo_store_origin(settings)}"
    )


def app_strings() -> dict:
    """What the app's scripts show, from the catalogue ({n}, {reason}… are filled in there)."""
    return {
        "labels": {
            "states": _texts(labels.CASE_STATES),
            "groups": _texts(labels.GROUPS),
            "risks": _texts(labels.RISK_LEVELS),
        },
        "waiting": _("{n} waiting to send"),
        "sending": _("Sending…"),
        "offline": _("Offline: kept on the phone, sent when the connection is back."),
        "refused": _("Refused: {reason}"),
        "correct": _("Correct"),
        "discard": _("Discard"),
        "discard_confirm": _("Discard this item? It will not be sent."),
        "retry": _("Send again"),
        "nothing": _("Nothing here."),
        "kinds": {
            "incident": _("Incident report"),
            "visit": _("Visit"),
            "verify": _("Verification"),
            "patrol": _("Patrol start"),
            "track": _("Patrol track"),
            "finish": _("Patrol end"),
        },
        "photos_waiting": _("{n} photos"),
        "remove_photo": _("Remove photo {n}"),
        "photo": _("Photo {n}"),
        "inside": _("Grid: {name}"),
        "outside": _("This place is outside the county: move the pin to where the incident is."),
        "unchecked": _("Offline: the place is checked when the report is sent."),
        "locating": _("Finding your location…"),
        "no_location": _("No location: allow location access, or drag the pin."),
        "location_at": _("Location: {lat}, {lon} (±{acc} m)"),
        "need_category": _("Choose a category."),
        "need_description": _("Describe the incident."),
        "need_after": _("Add a photo of the result."),
        "need_reason": _("Give the reason for sending it back."),
        "need_location": _("The location is not known yet."),
        "saved": _("Saved. It is sent as soon as there is a connection."),
        "visit_button": _("Record visit"),
        "verify_button": _("Verify"),
        "visits_done": _("{done} of {required} visits done"),
        "overdue": _("Missed last month: {missing}"),
        "patrol_idle": _("No patrol running."),
        "patrol_running": _("Patrol running since {time}."),
        "patrol_summary": _("{distance} m, {minutes} min"),
        "patrol_running_state": _("Running"),
        "patrol_flags": {"too_fast": _("Too fast"), "stationary": _("Never moved")},
        "case_at": _("Reported {time}"),
        "passed": _("Verification sent: passed."),
        "sent_back": _("Verification sent: back for rework."),
        "choose_category": _("Choose…"),
        "grid": _("Grid"),
        "metres": _("{n} m"),
    }


def _texts(table: dict) -> dict:
    return {code: str(text) for code, text in table.items()}
