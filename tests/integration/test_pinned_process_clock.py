"""The test-only setting GRIDWORK_TEST_CLOCK_START pins the clock of a real service process
(`python -m services.events`, as tests/stack.py starts every process of the stack): the
service reports its time from that instant on, and says at start that it is pinned."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nameko.exceptions import RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from gridwork_common.clock import TEST_CLOCK_VARIABLE
from gridwork_common.config import Settings
from tests.conftest import drop_databases, settings_env

ROOT = Path(__file__).resolve().parents[2]
PINNED = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
START_TIMEOUT_S = 120.0  # a bound on a slow start, not a duration under test


def _service_now(config: dict, deadline: float) -> datetime:
    """The events service's own "now" (working_time_left reports the instant it counted
    from), asked until the process answers."""
    while True:
        try:
            with ClusterRpcProxy(config, timeout=5) as proxy:
                return datetime.fromisoformat(proxy.events.working_time_left([])["now"])
        except (RpcTimeout, UnknownService):  # not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_the_setting_pins_a_service_process_clock_and_is_announced(infra, rabbit_config, tmp_path):
    env = settings_env(
        infra, rabbit_config["AMQP_URI"], **{TEST_CLOCK_VARIABLE: PINNED.isoformat()}
    )
    settings = Settings.from_env(env)
    log_path = tmp_path / "events.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.events"],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        now = _service_now(settings.nameko_config(), started + START_TIMEOUT_S)
        elapsed = timedelta(seconds=time.monotonic() - started)
    finally:
        process.terminate()
        process.wait(timeout=60)
        drop_databases(infra["mongo_uri"], settings.mongo_db_prefix)
    # From the pinned instant on, by no more than the real time since the process began.
    assert PINNED <= now <= PINNED + elapsed
    output = log_path.read_text()
    assert "WARNING" in output and f"{TEST_CLOCK_VARIABLE} is set" in output
