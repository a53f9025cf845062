"""The shared outbox runs a change in one transaction: a write conflict runs it again, an
unreachable mongod fails it at once (the caller answers 503), never a two-minute retry
loop holding the caller's worker (the driver's `with_transaction` would)."""

import pymongo
import pytest
from pymongo.errors import ConnectionFailure

from devstack.infra import init_replica_set, mongod_process
from devstack.processes import free_port
from gridwork_common.outbox import MAX_ATTEMPTS, Outbox

pytestmark = pytest.mark.integration


def client_of(uri: str) -> pymongo.MongoClient:
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500)


def test_a_change_that_meets_a_concurrent_write_is_run_again_and_kept_once(infra):
    client = client_of(infra["mongo_uri"])
    db = client["test_outbox_conflict"]
    db.drop_collection("counters")
    db.counters.insert_one({"_id": "x", "n": 0})
    runs = []

    def change(staged):
        runs.append(1)
        db.counters.find_one({"_id": "x"}, session=staged.session)  # the snapshot
        if len(runs) == 1:  # someone else writes the document meanwhile
            db.counters.update_one({"_id": "x"}, {"$inc": {"n": 100}})
        db.counters.update_one({"_id": "x"}, {"$inc": {"n": 1}}, session=staged.session)
        return "done"

    try:
        assert Outbox(db, publisher=None).run(change) == "done"
        assert len(runs) == 2
        assert db.counters.find_one({"_id": "x"})["n"] == 101
    finally:
        client.drop_database("test_outbox_conflict")
        client.close()


def test_an_unreachable_mongod_fails_the_change_without_running_it_again(tmp_path):
    port = free_port()
    mongod = mongod_process(tmp_path / "data", port, tmp_path / "run", tmp_path / "log")
    mongod.start()
    init_replica_set(port)
    client = client_of(f"mongodb://127.0.0.1:{port}/?replicaSet=rs0&directConnection=true")
    db = client["test_outbox_outage"]
    db.things.insert_one({"_id": "before"})
    mongod.stop()
    runs = []

    def change(staged):
        runs.append(1)
        db.things.insert_one({"_id": f"run-{len(runs)}"}, session=staged.session)

    try:
        with pytest.raises(ConnectionFailure):
            Outbox(db, publisher=None).run(change)
        assert len(runs) <= 1 < MAX_ATTEMPTS
    finally:
        client.close()
