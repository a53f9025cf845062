"""The population service's business metrics: the visit backlog per township and the
rows bulk imports have written."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge

VISIT_BACKLOG = Gauge(
    "gridwork_visit_backlog",
    "Visits owed to flagged residents over the months the overdue check looks back on",
    ("township",),
)
IMPORT_ROWS = Counter(
    "gridwork_import_rows_total", "Rows bulk imports have processed", ("kind", "outcome")
)
IMPORT_OUTCOMES = ("created", "updated", "unchanged", "failed")


def publish_visit_backlog(missing_by_township: Mapping[str, int]) -> None:
    VISIT_BACKLOG.clear()
    for township, missing in missing_by_township.items():
        VISIT_BACKLOG.labels(township).set(missing)


def count_import_rows(kind: str, counts: Mapping[str, int], counted: Mapping[str, int]) -> dict:
    """Add what a job wrote since `counted` (its counts at the last call); returns the
    counts to pass next time."""
    for outcome in IMPORT_OUTCOMES:
        written = counts.get(outcome, 0) - counted.get(outcome, 0)
        if written > 0:
            IMPORT_ROWS.labels(kind, outcome).inc(written)
    return dict(counts)
