"""The whole stack as real processes, for the tests that need it (tests/e2e, tests/ui):
the nameko services, the webhook deliveries and the gateway under gunicorn, started with
devstack's own `service_processes` against the test's private mongod, S3 and vhost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from devstack.processes import free_port, wait_until
from devstack.stack import service_processes
from gridwork_common.config import Settings
from services.media.storage import media_store

SERVICES = ("population", "events", "media", "assessment")
# Their processes (devstack.stack.service_processes): the media service as its two roles.
PROCESSES = ("population", "events", "media", "media-describer", "assessment")
# /readyz must answer within 3 s; a slower answer fails the request itself.
READYZ_TIMEOUT_S = 3.0
# Generous: on a loaded 2-core CI machine, seven processes start slowly.
START_TIMEOUT_S = 120.0


@contextmanager
def running_stack(env: dict, directory: Path, gateway_workers: int = 2) -> Iterator[dict]:
    """Start every process with `env`, wait for /readyz, yield what tests use, stop all."""
    media_store(Settings.from_env(env)).ensure_bucket()
    metrics_ports = {name: free_port() for name in PROCESSES}
    webhooks_metrics_port = free_port()
    gateway_port = free_port()
    processes = service_processes(
        env=env,
        run_dir=directory / "run",
        log_dir=directory / "log",
        metrics_ports=metrics_ports,
        gateway_port=gateway_port,
        gateway_workers=gateway_workers,
        webhooks_metrics_port=webhooks_metrics_port,
    )
    for process in processes:
        process.start()
    gateway = f"http://127.0.0.1:{gateway_port}"
    try:
        wait_until(lambda: gateway_ready(gateway), START_TIMEOUT_S, "the stack's /readyz")
        yield {
            "settings": Settings.from_env(env),
            "gateway": gateway,
            "metrics": {**metrics_ports, "webhooks": webhooks_metrics_port},
            "processes": {p.name: p for p in processes},
            "log_dir": directory / "log",
        }
    finally:
        for process in reversed(processes):
            process.stop()


def gateway_ready(gateway: str) -> bool:
    try:
        return requests.get(f"{gateway}/readyz", timeout=READYZ_TIMEOUT_S).status_code == 200
    except requests.RequestException:
        return False
