"""The lease an import job runs under, against the real mongod: the heartbeat that
renews it never writes the job while a checkpoint's transaction is writing it."""

import time

import pytest

from services.population import import_lease
from services.population.import_lease import JobLease

pytestmark = pytest.mark.integration

HEARTBEAT_CHANCES_S = 0.2  # time given to a heartbeat renewing every millisecond


def test_the_heartbeat_waits_for_a_checkpoint_transaction(population_db, clock, monkeypatch):
    monkeypatch.setattr(import_lease, "RENEWAL_S", 0.001)
    jobs = population_db.import_jobs
    jobs.delete_many({"_id": "lease-test"})
    jobs.insert_one({"_id": "lease-test", "status": "queued", "created_at": clock()})
    lease = JobLease(jobs, clock)
    job = lease.claim()
    assert job["_id"] == "lease-test"

    with lease.kept(job):
        with (
            lease.writing(),
            population_db.client.start_session() as session,
            session.start_transaction(),
        ):
            # The transaction reads first (its snapshot), as a batch's look-up does; a
            # renewal written now would make the update below fail with a WriteConflict.
            assert jobs.find_one({"_id": "lease-test"}, session=session) is not None
            time.sleep(HEARTBEAT_CHANCES_S)
            written = jobs.update_one(
                lease.mine(job), {"$set": {"checkpoint_rows": 2000}}, session=session
            )
            assert written.matched_count == 1
        time.sleep(HEARTBEAT_CHANCES_S)  # the heartbeat renews again once it is let go

    stored = jobs.find_one({"_id": "lease-test"})
    assert stored["checkpoint_rows"] == 2000
    assert stored["lease_owner"] == job["lease_owner"]
    jobs.delete_one({"_id": "lease-test"})
