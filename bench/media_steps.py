"""Step times of the media API process in `bench/media.py`: wall time of each call to
MediaDesk / MediaStore methods (which on one eventlet hub includes waiting for the
process's other green threads), measured inside `python -m services.media api`.

The bench starts the API role as its own process (`API_PROCESS`), as it is deployed; with
`BENCH_STEP_TIMES=<file>` in its environment the process wraps the methods below before it
starts, and on SIGUSR1 writes the times gathered since the last SIGUSR1 to that file
(JSON, atomically) and starts afresh. `collect` is the bench's side of that.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

from devstack.processes import ManagedProcess, wait_until
from services.media import usecases
from services.media.contents import ContentIndex
from services.media.service import MediaApiService
from services.media.storage import MediaStore
from services.media.usecases import MediaDesk

STEP_TIMES_SETTING = "BENCH_STEP_TIMES"
# `python -m services.media api`, with the steps timed when the bench asks for it.
API_PROCESS = """
import os, runpy, sys
if os.environ.get("BENCH_STEP_TIMES"):
    import gridwork_common.green  # first, as services.media's __main__ does
    from bench.media_steps import serve_step_times
    serve_step_times(os.environ["BENCH_STEP_TIMES"])
sys.argv = ["services.media", "api"]
runpy.run_module("services.media", run_name="__main__", alter_sys=True)
"""

SLOT_STEPS = (  # what MediaDesk.request_upload calls
    (MediaDesk, "_check_owner", "owner check"),
    (MediaApiService, "_owner", "owner lookup (RPC)"),  # when no recent yes is kept (owners.py)
    (ContentIndex, "claim", "claim objects/<sha>"),
    (ContentIndex, "holds", "claim in majority view"),
    (MediaStore, "upload_url", "presign PUT"),
)
CONFIRM_STEPS = (  # (owner, attribute, label) of what MediaDesk.confirm calls, in order
    (MediaStore, "checks_sha256", "does S3 check checksums"),
    (MediaStore, "head", "GET size + first bytes"),
    (MediaStore, "digest_if_any", "GET + SHA-256 (read-back)"),
    (MediaStore, "copy", "copy to objects/<sha>"),
    (MediaStore, "remove", "remove the upload"),
    (usecases, "announce_received", "publish media.received"),
)
Seconds = dict[str, list[float]]


class StepTimes:
    """Wall time of each call to wrapped functions, by label (this process only)."""

    def __init__(self):
        self.seconds: Seconds = defaultdict(list)

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label].append(time.perf_counter() - started)

        setattr(owner, name, timed)

    def take(self) -> Seconds:
        """The times so far; the next ones start afresh."""
        taken, self.seconds = dict(self.seconds), defaultdict(list)
        return taken


def instrument() -> StepTimes:
    steps = StepTimes()
    steps.wrap(MediaDesk, "request_upload", "request_upload")
    steps.wrap(MediaDesk, "confirm", "confirm")
    for owner, name, label in SLOT_STEPS + CONFIRM_STEPS:
        steps.wrap(owner, name, label)
    return steps


def serve_step_times(path: str) -> None:
    """In the API process: time the steps; on SIGUSR1 write them to `path` and reset."""
    steps = instrument()
    target = Path(path)

    def write(signum, frame) -> None:
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(steps.take()))
        os.replace(partial, target)

    signal.signal(signal.SIGUSR1, write)


def collect(process: ManagedProcess, path: Path) -> Seconds:
    """The step times the API process gathered since it was last asked."""
    path.unlink(missing_ok=True)
    process.signal(signal.SIGUSR1)
    wait_until(path.exists, 30, "the API process's step times", 0.05)
    return json.loads(path.read_text())


def steps_report(together: Seconds, photos: int, alone: Seconds, alone_photos: int) -> None:
    """Mean wall ms per photo of each step inside the service, with all callers and with
    one photo at a time, and each step's share of confirm."""
    print(
        "  inside the service, wall ms per photo:  all callers (share of confirm)   one at a time"
    )
    rows = [(label, False) for _, _, label in SLOT_STEPS] + [("request_upload", False)]
    rows += [(label, True) for _, _, label in CONFIRM_STEPS]
    rows += [("MongoDB, rest", True), ("confirm", True)]

    def spent(steps: Seconds, label: str) -> float:
        if label == "MongoDB, rest":
            inner = [step for _, _, step in CONFIRM_STEPS]
            steps_s = sum(sum(steps.get(step, ())) for step in inner)
            return sum(steps.get("confirm", ())) - steps_s
        return sum(steps.get(label, ()))

    confirm = spent(together, "confirm") or 1e-9
    for label, in_confirm in rows:
        mean = spent(together, label) / photos * 1000
        share = f"({spent(together, label) / confirm:4.0%})" if in_confirm else " " * 6
        by_itself = spent(alone, label) / alone_photos * 1000
        print(f"    {label:<28} {mean:7.1f} {share}   {by_itself:21.1f}")
