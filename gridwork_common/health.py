"""Health reports: what a service's `health` RPC returns and the gateway aggregates."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

UP = "up"
DOWN = "down"
# Visible in /readyz but not failing it: the service works, something needs a person's care.
WARNING = "warning"


def probe(check: Callable[[], object]) -> dict:
    """Run one dependency check; report up with its latency, or down with the reason."""
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": UP, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def advisory(check: Callable[[], dict]) -> dict:
    """Run a check whose failure must not take the service offline: its report, or a
    warning with the reason."""
    try:
        return check()
    except Exception as exc:
        return {"status": WARNING, "error": f"{type(exc).__name__}: {exc}"[:300]}


def service_report(service: str, components: Mapping[str, dict]) -> dict:
    """Down when a component is down; warnings are listed but leave the service up."""
    ok = all(c["status"] in (UP, WARNING) for c in components.values())
    warnings = sorted(name for name, c in components.items() if c["status"] == WARNING)
    report = {"service": service, "status": UP if ok else DOWN, "components": dict(components)}
    if warnings:
        report["warnings"] = warnings
    return report
