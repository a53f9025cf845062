"""The incident loop's business gauges, per township: open cases by state, how many are
overdue on their current stage and how many are under supervision.

Every replica of the events service refreshes them from MongoDB on a timer and reports
the same figures, so dashboards and alerts take `max by (township, ...)` over replicas.

Also where a report's time goes inside the service (its stages, wall-clock seconds: the
waits included), observed by the incident desk through `observe_report_stage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Gauge, Histogram

INCIDENTS_OPEN = Gauge(
    "gridwork_incidents_open", "Open incidents by township and state", ("township", "state")
)
INCIDENTS_OVERDUE = Gauge(
    "gridwork_incidents_overdue", "Open incidents overdue on their stage", ("township",)
)
INCIDENTS_SUPERVISED = Gauge(
    "gridwork_incidents_supervised", "Open incidents under supervision", ("township",)
)

REPORT_STAGE_SECONDS = Histogram(
    "gridwork_incident_report_stage_seconds",
    "Wall-clock seconds of each stage of storing a report in the events service",
    ("stage",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


def observe_report_stage(stage: str, seconds: float) -> None:
    REPORT_STAGE_SECONDS.labels(stage).observe(seconds)


def publish_incident_gauges(rows: Iterable[Mapping]) -> None:
    """`rows`: {township, state, count, overdue, supervised} per township and state.
    Series of townships or states with no open case any more disappear."""
    rows = list(rows)
    overdue: dict[str, int] = {}
    supervised: dict[str, int] = {}
    for gauge in (INCIDENTS_OPEN, INCIDENTS_OVERDUE, INCIDENTS_SUPERVISED):
        gauge.clear()
    for row in rows:
        township = row["township"] or "unknown"
        INCIDENTS_OPEN.labels(township, row["state"]).set(row["count"])
        overdue[township] = overdue.get(township, 0) + row["overdue"]
        supervised[township] = supervised.get(township, 0) + row["supervised"]
    for township, count in overdue.items():
        INCIDENTS_OVERDUE.labels(township).set(count)
    for township, count in supervised.items():
        INCIDENTS_SUPERVISED.labels(township).set(count)
