"""Prometheus metrics for nameko services, collected through worker hooks.

Declare `metrics = PrometheusMetrics()` on a service class and every entrypoint call is
counted and timed; business code never touches a metric. Each service process serves
`/metrics` on its own METRICS_PORT, beside its health probes (`gridwork_common/probes.py`;
0 turns the endpoint off, e.g. in tests that run several services in one process).
"""

from __future__ import annotations

import time
from weakref import WeakKeyDictionary

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram

from gridwork_common.config import Settings
from gridwork_common.probes import probe_server

LABELS = ("service", "entrypoint", "entrypoint_type")

ENTRYPOINT_CALLS = Counter(
    "gridwork_entrypoint_calls_total", "Entrypoint calls that finished", LABELS
)
ENTRYPOINT_ERRORS = Counter(
    "gridwork_entrypoint_errors_total",
    "Entrypoint calls that raised",
    (*LABELS, "exception"),
)
ENTRYPOINT_LATENCY = Histogram(
    "gridwork_entrypoint_latency_seconds",
    "Entrypoint call latency",
    LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Set by each service's outbox timer after it has sent what it could: events written with
# their change but not yet on the broker. Labelled by database (one per service).
OUTBOX_BACKLOG = Gauge(
    "gridwork_outbox_backlog", "Events waiting in a service's outbox", ("database",)
)
OUTBOX_OLDEST_AGE = Gauge(
    "gridwork_outbox_oldest_age_seconds",
    "Age of the oldest event waiting in a service's outbox (0 when empty)",
    ("database",),
)


class PrometheusMetrics(DependencyProvider):
    def __init__(self):
        self._started: WeakKeyDictionary = WeakKeyDictionary()

    def setup(self):
        probe_server(Settings.from_nameko_config(self.container.config).metrics_port)

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        labels = (
            worker_ctx.service_name,
            worker_ctx.entrypoint.method_name,
            type(worker_ctx.entrypoint).__name__,
        )
        ENTRYPOINT_CALLS.labels(*labels).inc()
        if started is not None:
            ENTRYPOINT_LATENCY.labels(*labels).observe(time.perf_counter() - started)
        if exc_info is not None:
            ENTRYPOINT_ERRORS.labels(*labels, exc_info[0].__name__).inc()
