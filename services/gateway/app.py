"""The gateway's WSGI application (Flask), served by gunicorn with gthread workers."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request

from gridwork_common.config import Settings
from gridwork_common.context import CallerContext, new_request_id
from gridwork_common.logs import bind, clear
from services.gateway.metrics import install_request_metrics, metrics_response
from services.gateway.problems import install_problem_handlers
from services.gateway.readiness import Readiness
from services.gateway.rpc import ServiceRpc

# Readiness must answer within 3 s even when a service is gone: each health RPC may
# take READINESS_RPC_TIMEOUT_S, and the whole check is cut off at READINESS_BUDGET_S.
READINESS_RPC_TIMEOUT_S = 2.0
READINESS_BUDGET_S = 2.5
REQUEST_ID_HEADER = "X-Request-Id"

log = logging.getLogger("gridwork.gateway")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask("gridwork-gateway")
    app.config["GRIDWORK_SETTINGS"] = settings
    app.extensions["rpc"] = ServiceRpc(settings.nameko_config(), timeout=settings.rpc_timeout)
    readiness = Readiness(
        ServiceRpc(settings.nameko_config(), timeout=READINESS_RPC_TIMEOUT_S),
        budget_s=READINESS_BUDGET_S,
    )

    install_problem_handlers(app)
    install_request_metrics(app)

    @app.before_request
    def identify_request():
        g.request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        bind(request_id=g.request_id, method=request.method, path=request.path)

    @app.after_request
    def finish_request(response: Response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        log.info("request", extra={"status": response.status_code})
        clear()
        return response

    @app.get("/healthz")
    def healthz():
        return jsonify(status="up")

    @app.get("/readyz")
    def readyz():
        caller = CallerContext(user_id="gateway", roles=("system",), request_id=g.request_id)
        ready, report = readiness.check(caller)
        return jsonify(report), (200 if ready else 503)

    @app.get("/metrics")
    def metrics():
        return metrics_response()

    return app
