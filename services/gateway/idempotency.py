"""Idempotency-Key records: the first attempt of a request claims its key, and a retry
gets the first attempt's response once it is done.

A claim is held by one attempt (`owner`) for a lease. The attempt releases its claim if
it fails, and a claim whose owner died (a gunicorn worker killed, a replica lost) lapses
when its lease runs out; a retry then takes the key over and runs the request again,
which is safe because the services de-duplicate by the same key. Several workers and
replicas share the records in the gateway's database, so every step is one conditional
write on the record.

An operation whose service replays by the key itself (it finds what an earlier attempt
under the key made and answers with it, as the events service does for a report) needs
less: its record only says what the key was used for (`keep_key`, one write). A retry of
the same request runs again and the service answers it; a different request under the
key is refused before anything runs. No lease: nothing waits for the first attempt."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from flask import Response
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.write_concern import WriteConcern

log = logging.getLogger("gridwork.gateway")

UNJOURNALED = WriteConcern(w=1)
PENDING = "pending"
DONE = "done"
KEYED = "keyed"  # the service keeps the answer: the record holds the request's fingerprint


class IdempotencyRecords:
    def __init__(self, collection: Collection, lease_s: float):
        self.collection = collection
        self.lease = timedelta(seconds=lease_s)

    def claim(self, record_id: str, fingerprint: str, now: datetime) -> tuple[str, dict | None]:
        """(owner, None) when this attempt may run the request; ("", record) when the key
        is held or done (the record, or None if it vanished meanwhile)."""
        owner = uuid.uuid4().hex
        try:
            # Not waiting for the journal either: a claim lost in a crash is a lapsed
            # lease (the retry runs the request again, the services de-duplicate).
            self.collection.with_options(write_concern=UNJOURNALED).insert_one(
                {
                    "_id": record_id,
                    "fingerprint": fingerprint,
                    "state": PENDING,
                    "owner": owner,
                    "lease_until": now + self.lease,
                    "created_at": now,
                }
            )
            return owner, None
        except DuplicateKeyError:
            pass
        # A pending record whose lease ran out (or that predates leases) belongs to an
        # attempt that is gone: take it over, if no other retry did first.
        taken = self.collection.find_one_and_update(
            {
                "_id": record_id,
                "fingerprint": fingerprint,
                "state": PENDING,
                "$or": [{"lease_until": {"$lte": now}}, {"lease_until": {"$exists": False}}],
            },
            {"$set": {"owner": owner, "lease_until": now + self.lease}},
            return_document=ReturnDocument.AFTER,
        )
        if taken is not None:
            log.info("idempotency key taken over from a lapsed attempt", extra={"key": record_id})
            return owner, None
        return "", self.collection.find_one({"_id": record_id})

    def keep_key(self, record_id: str, fingerprint: str, now: datetime) -> tuple[str, dict | None]:
        """For an operation whose service replays by the key: (owner, None) when this is
        the key's first use; ("", record) when it was used before (the record, or None if
        it vanished meanwhile)."""
        owner = uuid.uuid4().hex
        try:
            # Unjournaled, as a claim: a record lost in a crash lets a retry with another
            # request reach the service, which refuses it by its own fingerprint.
            self.collection.with_options(write_concern=UNJOURNALED).insert_one(
                {
                    "_id": record_id,
                    "fingerprint": fingerprint,
                    "state": KEYED,
                    "owner": owner,
                    "created_at": now,
                }
            )
            return owner, None
        except DuplicateKeyError:
            return "", self.collection.find_one({"_id": record_id})

    def release(self, record_id: str, owner: str) -> None:
        """The attempt failed: let a retry run at once. If the store itself is what failed,
        the lease lets the retry in later."""
        try:
            self.collection.delete_one(
                {"_id": record_id, "owner": owner, "state": {"$in": [PENDING, KEYED]}}
            )
        except PyMongoError:
            log.warning("idempotency key not released; its lease will lapse", exc_info=True)

    def finish(self, record_id: str, owner: str, response: Response) -> None:
        """Keep the response for retries. If it cannot be kept the client still gets its
        answer; a retry later runs again and the service finds the first result."""
        try:
            # Not waiting for the journal: a response lost in a crash is the case above.
            self.collection.with_options(write_concern=UNJOURNALED).update_one(
                {"_id": record_id, "owner": owner},
                {
                    "$set": {
                        "state": DONE,
                        "status": response.status_code,
                        "body": response.get_data(as_text=True),
                    },
                    "$unset": {"lease_until": ""},
                },
            )
        except PyMongoError:
            log.warning("idempotent response not kept", exc_info=True)
