"""The whole stack as real processes, for the tests that need it (tests/e2e, tests/ui):
the nameko services, the webhook deliveries and the gateway under gunicorn, started with
devstack's own `service_processes` against the test's private mongod, S3 and vhost.

Every process's clock is pinned (GRIDWORK_TEST_CLOCK_START) at STACK_PINNED_AT unless a
test passes another instant, as of one moment (GRIDWORK_TEST_CLOCK_SINCE), so all agree
however far apart they started; the stack's `clock` is the test's own clock pinned the same
way, so a test dates what it sends, and the browser's clock, by the stack's time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import requests

from devstack.processes import free_port, wait_until
from devstack.stack import service_processes
from gridwork_common.clock import (
    TEST_CLOCK_SINCE_VARIABLE,
    TEST_CLOCK_VARIABLE,
    pinned_clock_since,
    utc_now,
)
from gridwork_common.config import Settings
from services.media.storage import media_store

SERVICES = ("population", "events", "media", "assessment")
# Their processes (devstack.stack.service_processes): the media service as its two roles.
PROCESSES = ("population", "events", "media", "media-describer", "assessment")
# /readyz must answer within 3 s; a slower answer fails the request itself.
READYZ_TIMEOUT_S = 3.0
# Generous: on a loaded 2-core CI machine, seven processes start slowly.
START_TIMEOUT_S = 120.0
# Monday 30 November 2026, 23:00 UTC: in China already Tuesday 1 December, 07:00, a
# working day (no holiday), while UTC is still in the last evening of November. Whatever
# counts a month, a day or a deadline by UTC instead of China time shows here; and the
# month in China does not change for eight hours of the run (a UI shard lasts minutes).
STACK_PINNED_AT = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


@contextmanager
def running_stack(
    env: dict, directory: Path, gateway_workers: int = 2, pinned_at: datetime = STACK_PINNED_AT
) -> Iterator[dict]:
    """Start every process with `env` and its clock pinned at `pinned_at`, wait for
    /readyz, yield what tests use, stop all."""
    # Every process, and the test, reads the pinned instant as having been at this moment.
    since = utc_now()
    clock = pinned_clock_since(pinned_at, since)  # as each process builds its own
    env = {
        **env,
        TEST_CLOCK_VARIABLE: pinned_at.isoformat(),
        TEST_CLOCK_SINCE_VARIABLE: since.isoformat(),
    }
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
            "clock": clock,
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
