"""/readyz: ask every service's `health` in parallel and report within a fixed budget.

A component reporting a warning (e.g. events' calendar lacking next year's holiday notice)
is listed under `warnings` and leaves /readyz at 200: it needs a person, not a restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from gridwork_common import service_names
from gridwork_common.context import CallerContext
from gridwork_common.health import DOWN, UP, WARNING
from services.gateway.rpc import ServiceRpc

SERVICES = service_names.ALL


class Readiness:
    def __init__(self, rpc: ServiceRpc, budget_s: float, services=SERVICES):
        self.rpc = rpc
        self.budget_s = budget_s
        self.services = tuple(services)
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        # Created on first use, i.e. in the gunicorn worker after the fork.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=4 * len(self.services), thread_name_prefix="readyz"
            )
        return self._pool

    def _ask(self, service: str, caller: CallerContext) -> dict:
        try:
            report = self.rpc.call(service, "health", caller=caller)
        except Exception as exc:
            return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return report

    def check(self, caller: CallerContext) -> tuple[bool, dict]:
        futures = {
            service: self._executor().submit(self._ask, service, caller)
            for service in self.services
        }
        wait(futures.values(), timeout=self.budget_s)
        components = {}
        for service, future in futures.items():
            if future.done():
                components[service] = future.result()
            else:
                components[service] = {
                    "status": DOWN,
                    "error": f"no health reply within {self.budget_s:g}s",
                }
        down = sorted(name for name, report in components.items() if report["status"] != UP)
        warnings = sorted(
            f"{service}.{name}"
            for service, report in components.items()
            for name, component in report.get("components", {}).items()
            if component.get("status") == WARNING
        )
        return not down, {
            "status": UP if not down else DOWN,
            "down": down,
            "warnings": warnings,
            "components": components,
        }
