"""Helpers shared by the benchmark scripts (bench/incidents.py, gateway.py, media.py).

Imported after each script's first import (`gridwork_common.green` where it patches
eventlet), never run by itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nameko.testing.rabbit import Client

from devstack.infra import init_replica_set, mongod_process, s3_process
from devstack.processes import ManagedProcess, free_port, port_open, wait_until


# ---------------------------------------------------------------------------- output
def percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    ordered = sorted(latencies)
    p99 = ordered[max(math.ceil(len(ordered) * 0.99) - 1, 0)]
    return statistics.median(ordered) * 1000, p99 * 1000


def cpu_line(used: dict[str, float], seconds: float) -> str:
    parts = ", ".join(f"{name} {value:.1f}" for name, value in used.items())
    cpus = os.cpu_count() or 1
    return f"CPU seconds: {parts} (of {seconds * cpus:.1f} on {cpus} CPUs)"


def load_line() -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"load average before the run: {load} ({os.cpu_count()} CPUs)"


def tail(path: Path, lines: int = 15, skip: str = "") -> str:
    """The last `lines` lines of a log (leaving out those containing `skip`, if given)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join([line for line in text if not (skip and skip in line)][-lines:])


# ---------------------------------------------------------------------------- CPU
def beams() -> list[int]:
    """The RabbitMQ node's Erlang VM (a read-only look at /proc; Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "beam.smp":
                    found.append(int(entry.name))
    return found


def _stat_fields(path: Path) -> list[str] | None:
    """/proc/<pid>/stat after pid and comm: [2] is the process group, [11], [12] utime,
    stime."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


class CpuMeter:
    """User + system CPU seconds of groups of processes, from /proc (Linux).

    By default each pid counts by itself. With `process_groups`, each pid leads a process
    group whose every member counts (each ManagedProcess leads its own session, so a
    gunicorn master's workers are in its group)."""

    def __init__(self, groups: dict[str, list[int | None]], process_groups: bool = False):
        self.groups = {name: [pid for pid in pids if pid] for name, pids in groups.items()}
        self.process_groups = process_groups
        self.tick = os.sysconf("SC_CLK_TCK")

    def _seconds(self, fields: list[str] | None) -> float:
        return (int(fields[11]) + int(fields[12])) / self.tick if fields else 0.0

    def _group_seconds(self, pids: list[int]) -> float:
        if not self.process_groups:
            return sum(self._seconds(_stat_fields(Path(f"/proc/{pid}/stat"))) for pid in pids)
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            fields = _stat_fields(entry / "stat")
            if fields and (int(fields[2]) in pids or int(entry.name) in pids):
                total += self._seconds(fields)
        return total

    def snapshot(self) -> dict[str, float]:
        return {name: self._group_seconds(pids) for name, pids in self.groups.items()}

    def since(self, before: dict[str, float]) -> dict[str, float]:
        return {name: value - before[name] for name, value in self.snapshot().items()}


# ---------------------------------------------------------------------------- setup
@contextlib.contextmanager
def private_vhost(amqp_uri: str, management_uri: str):
    """A fresh RabbitMQ vhost for this run (the AMQP user may do anything in it); yields
    the AMQP URI into it, and deletes it with everything in it afterwards."""
    rabbit = Client(management_uri)
    vhost = f"gridwork_bench_{uuid.uuid4().hex[:8]}"
    rabbit.create_vhost(vhost)
    try:
        user = urlsplit(amqp_uri).username or "guest"
        rabbit.set_vhost_permissions(vhost, user, ".*", ".*", ".*")
        yield f"{amqp_uri.rstrip('/')}/{vhost}"
    finally:
        rabbit.delete_vhost(vhost)


@contextlib.contextmanager
def running(processes: list[ManagedProcess]):
    """Start the processes; stop every one (last started first), whatever happens."""
    started: list[ManagedProcess] = []
    try:
        for process in processes:
            process.start()
            started.append(process)
        yield processes
    finally:
        for process in reversed(started):
            process.stop()


@dataclass
class Servers:
    root: Path  # the temporary directory (run/ and log/ in it may serve other processes)
    mongo_port: int
    s3_port: int | None
    pids: dict[str, int | None]  # "mongod", and "s3" when there is one

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/?replicaSet=rs0&directConnection=true"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"


@contextlib.contextmanager
def private_servers(s3_keys: tuple[str, str] | None = None, prefix: str = "gridwork-bench-"):
    """A mongod (single-node replica set) and, given `(access key, secret key)`, an S3
    server (`devstack.infra.s3_process`), on free ports in a temporary directory; yields
    their Servers, stops them and removes the directory. On failure, prints the ends of
    their logs to stderr (the logs go with the directory)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        mongo_port = free_port()
        run, log = root / "run", root / "log"
        processes = [mongod_process(root / "mongo", mongo_port, run, log, "bench-mongod")]
        s3_port = None
        if s3_keys is not None:
            s3_port = free_port()
            access_key, secret_key = s3_keys
            processes.append(
                s3_process(root / "s3", s3_port, access_key, secret_key, run, log, "bench-s3")
            )
        with running(processes):
            try:
                init_replica_set(mongo_port)
                if s3_port is not None:
                    wait_until(lambda: port_open("127.0.0.1", s3_port), 30, "S3 server")
                pids = {"mongod": processes[0].running_pid()}
                if s3_port is not None:
                    pids["s3"] = processes[1].running_pid()
                yield Servers(root, mongo_port, s3_port, pids)
            except BaseException:
                for process in reversed(processes):
                    # rclone logs this, harmlessly, whenever a directory empties
                    end = tail(process.logfile, skip="Dir.Remove not empty")
                    print(f"--- end of {process.logfile.name}:\n{end}", file=sys.stderr)
                raise
    finally:
        shutil.rmtree(root, ignore_errors=True)
