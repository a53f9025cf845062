"""Gateway request metrics in prometheus_client's multiprocess mode, so /metrics reports
all gunicorn workers, whichever one answers the scrape.

PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported; the gunicorn
config sets it and clears the directory when the master starts.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "gridwork_http_requests_total", "HTTP requests answered", ("method", "route", "status")
)
LATENCY = Histogram(
    "gridwork_http_request_latency_seconds",
    "HTTP request latency",
    ("method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RPC_LATENCY = Histogram(
    "gridwork_gateway_rpc_latency_seconds",
    "RPC latency from the gateway, by service, method and outcome",
    ("service", "method", "outcome"),
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Counted by the webhook delivery process (services/gateway/deliveries.py, its own
# METRICS_PORT): each attempt's outcome; `dead` is a delivery given up on.
WEBHOOK_DELIVERIES = Counter(
    "gridwork_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, dead)",
    ("outcome",),
)


def install_request_metrics(app: Flask) -> None:
    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response):
        # The route template, not the path: ids in paths would explode label cardinality.
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            LATENCY.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response


def metrics_response() -> Response:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
