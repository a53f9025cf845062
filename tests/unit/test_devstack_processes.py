"""The pid-file process handling behind `make up` / `make down` (real child processes)."""

import json
import sys

from devstack.processes import ManagedProcess


def _sleeper(tmp_path, name="sleeper", marker="gridwork-test-sleeper"):
    return ManagedProcess(
        name=name,
        argv=[sys.executable, "-c", "import time; time.sleep(60)", marker],
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "log",
        marker=marker,
    )


def test_starting_twice_starts_once_and_stop_stops_it(tmp_path):
    process = _sleeper(tmp_path)
    pid = process.start()
    try:
        assert process.start() == pid  # `make up` twice changes nothing
        assert process.running_pid() == pid
    finally:
        assert process.stop() is True
    assert process.running_pid() is None
    assert not process.pidfile.exists()
    assert process.stop() is False  # nothing left to stop


def test_a_pid_that_is_not_ours_is_never_signalled(tmp_path):
    ours = _sleeper(tmp_path, name="ours", marker="marker-of-ours")
    other = _sleeper(tmp_path, name="other", marker="marker-of-another")
    other_pid = other.start()
    try:
        # A stale pid file whose pid now belongs to a different process.
        ours.run_dir.mkdir(parents=True, exist_ok=True)
        ours.pidfile.write_text(json.dumps({"pid": other_pid, "marker": "marker-of-ours"}))
        assert ours.running_pid() is None
        assert ours.stop() is False
        assert other.running_pid() == other_pid  # still alive
    finally:
        other.stop()
