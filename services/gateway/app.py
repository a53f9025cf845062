"""The gateway's WSGI application (Flask), served by gunicorn with gthread workers."""

from __future__ import annotations

import html
import logging
import os

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from gridwork_common.clock import Clock, utc_now
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext, new_request_id
from gridwork_common.logs import bind, clear
from services.gateway import timing
from services.gateway.activity import AccountActivity
from services.gateway.api import Api
from services.gateway.auth import Identity
from services.gateway.metrics import install_request_metrics, metrics_response
from services.gateway.problems import RETRY_AFTER_S, install_problem_handlers
from services.gateway.readiness import Readiness
from services.gateway.routes import (
    amqp_accounts,
    assessment,
    identity,
    incidents,
    media,
    open311,
    patrols,
    population,
    subscriptions,
)
from services.gateway.rpc import ServiceRpc
from services.gateway.store import gateway_db
from services.gateway.ui import install_ui

# Readiness must answer within 3 s even when a service is gone: each health RPC may
# take READINESS_RPC_TIMEOUT_S, and the whole check is cut off at READINESS_BUDGET_S.
READINESS_RPC_TIMEOUT_S = 2.0
READINESS_BUDGET_S = 2.5
REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_BYTES = int(os.environ.get("GATEWAY_MAX_REQUEST_BYTES", str(16 * 1024 * 1024)))
CORS_ORIGINS = [o for o in os.environ.get("GATEWAY_CORS_ORIGINS", "").split(",") if o]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
CHANGING_METHODS = ("POST", "PATCH", "PUT", "DELETE")
# Each route family registers its operations on the Api and returns its blueprint.
FAMILIES = (
    identity,
    population,
    patrols,
    incidents,
    media,
    assessment,
    open311,
    subscriptions,
    amqp_accounts,
)

log = logging.getLogger("gridwork.gateway")


def build_api() -> tuple[Api, list]:
    api = Api(
        "Gridwork API",
        "1.0.0",
        "Grid-based community service management. Errors are RFC 9457 problem+json.",
    )
    blueprints = [family.register(api) for family in FAMILIES]
    return api, blueprints


def create_app(
    settings: Settings | None = None, clock: Clock = utc_now, system_clock: Clock | None = None
) -> Flask:
    """The gateway. `clock` dates the county's work (account activity, Open311 requests);
    `system_clock` (by default the same) stamps what other programs judge by the
    machine's own time: records mongod's TTL monitor deletes (idempotency, login failures,
    refresh tokens), tokens pyjwt checks, and webhook timestamps receivers check. Only a
    test that pins `clock` keeps `system_clock` real."""
    settings = settings or Settings.from_env()
    system_clock = system_clock or clock
    app = Flask("gridwork-gateway")
    app.config["GRIDWORK_SETTINGS"] = settings
    if settings.trusted_proxy_hops:
        # The client's address is the entry the county's own proxies appended to
        # X-Forwarded-For, never one a client wrote (login and Open311 limits use it);
        # their X-Forwarded-Proto says whether the browser came over TLS (Secure cookies).
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.ensure_ascii = False  # Chinese text as UTF-8, not \u escapes
    app.json.sort_keys = False
    app.extensions["rpc"] = ServiceRpc(settings.nameko_config(), timeout=settings.rpc_timeout)
    app.extensions["clock"] = clock
    app.extensions["system_clock"] = system_clock
    app.extensions["identity"] = lambda: Identity(gateway_db(settings), settings, system_clock)
    app.extensions["activity"] = AccountActivity(settings, clock)
    readiness = Readiness(
        ServiceRpc(settings.nameko_config(), timeout=READINESS_RPC_TIMEOUT_S),
        budget_s=READINESS_BUDGET_S,
    )
    api, blueprints = build_api()
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    install_ui(app)  # the command centre at / (services/gateway/ui, docs/web-ui.md)

    install_problem_handlers(app)
    install_request_metrics(app)

    @app.before_request
    def identify_request():
        timing.start()
        g.request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        bind(request_id=g.request_id, method=request.method, path=request.path)

    @app.before_request
    def declared_methods_only():
        """On a concrete path of the document, only its declared methods: Flask would
        otherwise route PATCH /api/v1/residents/search to /residents/{resident_id}."""
        declared = api.methods_of(request.path)
        if declared is None or request.method in declared:
            return None
        allowed = sorted(declared | {"OPTIONS"} | ({"HEAD"} if "GET" in declared else set()))
        if request.method == "OPTIONS":
            return Response(status=200, headers={"Allow": ", ".join(allowed)})
        if request.method == "HEAD" and "GET" in declared:
            return None
        raise MethodNotAllowed(valid_methods=allowed)

    @app.after_request
    def finish_request(response: Response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        origin = request.headers.get("Origin")
        if origin and origin in CORS_ORIGINS:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Idempotency-Key, X-Request-Id, X-Reveal-Purpose"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
        caller = g.get("caller")
        if (
            caller is not None
            and request.method in CHANGING_METHODS
            and response.status_code < 400
            and g.get("activity_event") is None  # the service's event tells it
        ):
            route = request.url_rule.rule if request.url_rule else request.path
            with timing.stage("activity"):
                app.extensions["activity"].action(
                    caller, request.method, route, response.status_code
                )
        response.headers[timing.HEADER] = timing.header()
        log.info(
            "request",
            extra={"status": response.status_code, "user_id": caller.user_id if caller else None},
        )
        clear()
        return response

    @app.get("/healthz")
    def healthz():
        return jsonify(status="up")

    @app.get("/readyz")
    def readyz():
        caller = CallerContext(user_id="gateway", roles=("system",), request_id=g.request_id)
        ready, report = readiness.check(caller)
        if ready:
            return jsonify(report)
        # The report (not a problem document) is what probes and operators read.
        return jsonify(report), 503, {"Retry-After": str(RETRY_AFTER_S)}

    @app.get("/metrics")
    def metrics():
        return metrics_response()

    @app.get("/api/v1/openapi.json")
    def openapi():
        return jsonify(api.document(server_url=request.host_url.rstrip("/")))

    @app.get("/api/v1/docs")
    def docs():
        return Response(render_docs(api.document()), mimetype="text/html")

    return app


def render_docs(document: dict) -> str:
    """A plain, dependency-free reference page of every operation."""
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = ", ".join(
                f"{p['name']} ({p['in']}{', required' if p.get('required') else ''})"
                for p in operation.get("parameters", [])
            )
            content = operation.get("requestBody", {}).get("content", {})
            body_ref = ", ".join(
                f"{media}: {spec.get('schema', {}).get('$ref', 'object').rsplit('/', 1)[-1]}"
                for media, spec in content.items()
            )
            rows.append(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td>"
                "<td>{}</td><td>{}</td></tr>".format(
                    method.upper(),
                    html.escape(path),
                    html.escape(operation["summary"]),
                    html.escape(operation.get("description", "")),
                    html.escape(parameters),
                    html.escape(body_ref),
                )
            )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(document['info']['title'])}</title>"
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}</style></head><body>"
        f"<h1>{html.escape(document['info']['title'])} {document['info']['version']}</h1>"
        "<p>Machine-readable: <a href='openapi.json'>openapi.json</a> (OpenAPI 3.1). "
        "Errors are RFC 9457 <code>application/problem+json</code> naming the field.</p>"
        "<table><tr><th>method</th><th>path</th><th>summary</th><th>who</th>"
        "<th>parameters</th><th>body</th></tr>" + "".join(rows) + "</table></body></html>"
    )
