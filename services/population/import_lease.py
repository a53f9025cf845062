"""The lease under which one replica runs an import job.

A job is claimed with a lease and an owner token; while it runs, a heartbeat renews the
lease every `RENEWAL_S`, so a replica that dies (SIGKILL, a lost node) lets another take
the job over within one `LEASE`, not minutes later. Every checkpoint and the job's end
are written only if the token is still the job's: a replica that lost its lease (paused,
partitioned) can no longer write, so no batch is written twice. The heartbeat never
writes while a checkpoint's transaction is open (`writing()`): its update of the job
would make the transaction's update of the same job fail with a WriteConflict.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta

from pymongo import ReturnDocument
from pymongo.collection import Collection

from gridwork_common.clock import Clock

log = logging.getLogger("gridwork.imports")
LEASE = timedelta(seconds=60)
RENEWAL_S = 10.0
QUEUED, RUNNING = "queued", "running"


class LeaseLost(RuntimeError):
    """Another replica took the job over: this one stops writing it."""


class JobLease:
    def __init__(self, jobs: Collection, clock: Clock):
        self.jobs = jobs
        self.clock = clock
        self._writes = threading.Lock()  # a checkpoint's transaction, or the heartbeat

    def claim(self) -> Mapping | None:
        """The oldest queued job, or one whose runner's lease ran out, now ours."""
        now = self.clock()
        return self.jobs.find_one_and_update(
            {"$or": [{"status": QUEUED}, {"status": RUNNING, "lease_until": {"$lt": now}}]},
            {
                "$set": {
                    "status": RUNNING,
                    "lease_until": now + LEASE,
                    "lease_owner": uuid.uuid4().hex,
                    "started_at": now,
                }
            },
            sort=[("created_at", 1)],
            return_document=ReturnDocument.AFTER,
        )

    def mine(self, job: Mapping) -> dict:
        """The filter that matches the job only while this runner holds its lease."""
        return {"_id": job["_id"], "lease_owner": job["lease_owner"]}

    def renewal(self) -> dict:
        return {"lease_until": self.clock() + LEASE}

    @contextmanager
    def kept(self, job: Mapping) -> Iterator[None]:
        """Renew the lease in the background while the job runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(RENEWAL_S):
                try:
                    with self._writes:
                        self.jobs.update_one(self.mine(job), {"$set": self.renewal()})
                except Exception:  # the next checkpoint says if the lease is lost
                    log.warning("import job %s: lease not renewed", job["_id"], exc_info=True)

        heartbeat = threading.Thread(target=renew, name=f"lease-{job['_id']}", daemon=True)
        heartbeat.start()
        try:
            yield
        finally:
            stop.set()
            heartbeat.join()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the heartbeat back while a checkpoint's transaction writes the job."""
        with self._writes:
            yield
