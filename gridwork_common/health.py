"""Health reports: what a service's `health` RPC returns and the gateway aggregates."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

UP = "up"
DOWN = "down"


def probe(check: Callable[[], object]) -> dict:
    """Run one dependency check; report up with its latency, or down with the reason."""
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": UP, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def service_report(service: str, components: Mapping[str, dict]) -> dict:
    status = UP if all(c["status"] == UP for c in components.values()) else DOWN
    return {"service": service, "status": status, "components": dict(components)}
