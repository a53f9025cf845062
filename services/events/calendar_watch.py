"""Saying loudly that the working calendar lacks a year's holiday notice.

Deadlines reaching a year without a notice are counted on weekends alone (a county cannot stop
taking reports), so every such computation is counted and logged, and the years deadlines can
reach without a notice are exported as gauges an alert watches (deploy/prometheus/alerts.yml).
The gauges are set by the events service's calendar check (a timer, and every health call).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from prometheus_client import Counter, Gauge

log = logging.getLogger("gridwork.events.calendar")

NOTICE_MISSING = Gauge(
    "gridwork_calendar_notice_missing",
    "1 for a year deadlines can reach (or next year, from December) that has no holiday "
    "notice, official or loaded; 0 for this and next year otherwise",
    ("year",),
)
LAST_NOTICE_YEAR = Gauge(
    "gridwork_calendar_last_notice_year",
    "The last year the working calendar has a holiday notice for",
)
UNCONFIRMED_COMPUTATIONS = Counter(
    "gridwork_calendar_unconfirmed_computations_total",
    "Deadlines and working-time counts that reached a year without a holiday notice "
    "(counted on weekends alone)",
    ("year", "computation"),
)

_lock = threading.Lock()
_logged: set[tuple[int, str]] = set()


def count_unconfirmed(years: Iterable[int], computation: str) -> None:
    """Count (and log, once per year and kind per process) a computation done without a
    notice for `years`."""
    for year in years:
        UNCONFIRMED_COMPUTATIONS.labels(str(year), computation).inc()
        with _lock:
            first = (year, computation) not in _logged
            _logged.add((year, computation))
        if first:
            log.warning(
                "a %s reached %s, which has no holiday notice: counted on weekends alone",
                computation,
                year,
                extra={"year": year, "computation": computation},
            )


def publish(checked_years: Iterable[int], missing_years: Iterable[int], last: int | None) -> None:
    """Export, for each year checked (this year, next year, any deadlines reach), whether it
    lacks a notice; years no longer checked drop out."""
    missing = set(missing_years)
    with _lock:
        NOTICE_MISSING.clear()
        for year in sorted(set(checked_years) | missing):
            NOTICE_MISSING.labels(str(year)).set(1 if year in missing else 0)
        if last is not None:
            LAST_NOTICE_YEAR.set(last)
