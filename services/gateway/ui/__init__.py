"""The command centre: server-rendered pages at the gateway's root, for the same users,
roles and territory scope as the JSON API (docs/web-ui.md says how to add a page).

`install_ui(app)` mounts the `ui` blueprint at `/` and, for its routes only: server-side
sessions (ui/sessions.py), CSRF on every unsafe request (flask-wtf; the API keeps bearer
tokens and no CSRF), a strict Content-Security-Policy, the signed-in caller for every
view (ui/pages.py), and error pages instead of problem+json (ui/errors.py).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from services.gateway.ui import (
    admin,
    admin_catalogue,
    assessment,
    case,
    errors,
    grid_map,
    patrol_tracks,
    phone,
    population,
    population_imports,
    queues,
    security,
    vendor,
    views,
)
from services.gateway.ui.i18n import install_i18n
from services.gateway.ui.sessions import ServerSessions

# The pages: each module has `blueprint`, mounted inside the `ui` blueprint (so its views
# get the session, CSRF, CSP, caller and error pages). Add yours here.
PAGES: tuple = (
    grid_map,
    patrol_tracks,
    queues,
    case,
    population,
    population_imports,
    assessment,
    admin,
    phone,
    admin_catalogue,
)

csrf = CSRFProtect()


def install_ui(app: Flask) -> Blueprint:
    settings = app.config["GRIDWORK_SETTINGS"]
    # Flask signs nothing the browser keeps (the session key is random); flask-wtf signs
    # its CSRF tokens with this key, derived so it differs from the token secret.
    app.secret_key = hmac.new(settings.token_secret, b"gridwork-ui-csrf", hashlib.sha256).digest()
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # only the ui blueprint checks (security.py)
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as its session
        WTF_CSRF_SSL_STRICT=True,
    )
    csrf.init_app(app)
    app.session_interface = ServerSessions(settings, app.extensions["system_clock"])
    install_i18n(app)

    blueprint = Blueprint(
        "ui",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/ui/static",
    )
    security.install(blueprint, csrf, settings)
    errors.install(blueprint)
    vendor.install(blueprint)
    views.install(blueprint)
    for page in PAGES:
        blueprint.register_blueprint(page.blueprint)
    app.register_blueprint(blueprint)
    return blueprint
