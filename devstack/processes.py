"""Start, find and stop the local stack's processes through pid files.

A pid file records the pid and a marker from the command line, so `make down` stops
exactly what `make up` started and never a process that later reused the pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:g}s")
        time.sleep(interval_s)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class ManagedProcess:
    """One long-running process of the stack, with its pid file and log file."""

    name: str
    argv: list[str]
    run_dir: Path
    log_dir: Path
    env: dict | None = None
    marker: str = ""  # a string its command line must contain to count as ours

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def running_pid(self) -> int | None:
        try:
            record = json.loads(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        pid = record.get("pid")
        if isinstance(pid, int) and record.get("marker", "") in _cmdline(pid) and _cmdline(pid):
            return pid
        return None

    def start(self) -> int:
        pid = self.running_pid()
        if pid is not None:
            return pid
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            process = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env={**os.environ, **(self.env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach its children
            )
        self.pidfile.write_text(json.dumps({"pid": process.pid, "marker": self.marker}))
        # Until the child has exec'd, its command line is still ours (a green Popen under
        # eventlet returns before the exec): wait so a second start sees it as running.
        deadline = time.monotonic() + 5
        while self.marker not in _cmdline(process.pid) and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.01)
        return process.pid

    def signal(self, signum: int) -> None:
        pid = self.running_pid()
        if pid is not None:
            os.killpg(pid, signum)

    def stop(self, timeout_s: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after the timeout. True if something was stopped."""
        pid = self.running_pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while _cmdline(pid) and time.monotonic() < deadline:
                self._reap(pid)
                time.sleep(0.1)
            if _cmdline(pid):
                os.killpg(pid, signal.SIGKILL)
                self._reap(pid)
        except ProcessLookupError:
            pass
        self.pidfile.unlink(missing_ok=True)
        return True

    @staticmethod
    def _reap(pid: int) -> None:
        # A child of this process lingers as a zombie (with an empty cmdline) until reaped.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
