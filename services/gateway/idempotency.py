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

import hashlib
import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Response, current_app, request
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.write_concern import WriteConcern

from gridwork_common.clock import utc_now
from gridwork_common.config import Settings
from services.gateway import store, timing
from services.gateway.problems import IDEMPOTENCY_HEADER, PROBLEM_JSON, ApiProblem

log = logging.getLogger("gridwork.gateway")

MAX_KEY_LENGTH = 100
REPLAYED_HEADER = "Idempotent-Replayed"
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


# ---------------------------------------------------------------------- a request's key
def required_key() -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiProblem(
            400,
            "Bad Request",
            f"{IDEMPOTENCY_HEADER}: required, at most {MAX_KEY_LENGTH} characters",
            field=IDEMPOTENCY_HEADER,
        )
    return key


def answer(
    run: Callable[[], Response], record_id: str, *, replayed_by_service: bool = False
) -> Response:
    """The response to a request under an Idempotency-Key (`record_id` is the caller's
    and the key's): `run()` for its first attempt, the first response (or the service's
    answer, `replayed_by_service`) for a retry, a refusal for another request."""
    settings = current_app.config["GRIDWORK_SETTINGS"]
    records = IdempotencyRecords(
        store.gateway_db(settings)[store.IDEMPOTENCY], lease_s=_lease_s(settings)
    )
    fingerprint = _request_fingerprint()
    if replayed_by_service:
        return _replayed_by_service(run, records, record_id, fingerprint)
    with timing.stage("idempotency"):
        claimed, record = records.claim(record_id, fingerprint, _now())
    if not claimed:
        return _replay(record, fingerprint, _now())
    try:
        response = run()
    except Exception:
        # Nothing to replay: a retry after a failure must run again (the services
        # de-duplicate by the key, so a first attempt that did its work is found).
        records.release(record_id, claimed)
        raise
    with timing.stage("idempotency"):
        records.finish(record_id, claimed, response)
    return response


def _replayed_by_service(
    run: Callable[[], Response], records: IdempotencyRecords, record_id: str, fingerprint: str
) -> Response:
    """One write for the key's first use; a retry of the same request runs again (the
    service answers it with what the first attempt made, also while that attempt is still
    running: the service de-duplicates), a different request under the key is refused
    before anything runs."""
    with timing.stage("idempotency"):
        owner, record = records.keep_key(record_id, fingerprint, _now())
    if owner:
        try:
            return run()
        except Exception:
            # A retry with a corrected request may use the key (the service refuses it
            # if the first attempt did its work after all).
            records.release(record_id, owner)
            raise
    if record is not None and (record["state"] != KEYED or record["fingerprint"] != fingerprint):
        return _replay(record, fingerprint, _now())  # kept by another kind of operation
    response = run()
    if record is not None:
        response.headers[REPLAYED_HEADER] = "true"
    return response


def _replay(record: dict | None, fingerprint: str, now: datetime) -> Response:
    if record is None:  # expired between the insert and the read: treat as in progress
        raise ApiProblem(
            409, "Conflict", f"{IDEMPOTENCY_HEADER}: retry shortly", field=IDEMPOTENCY_HEADER
        )
    if record["fingerprint"] != fingerprint:
        raise ApiProblem(
            422,
            "Invalid input",
            f"{IDEMPOTENCY_HEADER}: already used for a different request",
            field=IDEMPOTENCY_HEADER,
        )
    if record["state"] != DONE:
        lease_until = record.get("lease_until") or now
        wait_s = max(1, math.ceil((_aware(lease_until) - now).total_seconds()))
        problem = ApiProblem(
            409,
            "Conflict",
            f"{IDEMPOTENCY_HEADER}: the first request is still running; retry after {wait_s} s",
            field=IDEMPOTENCY_HEADER,
        )
        problem.headers["Retry-After"] = str(wait_s)
        raise problem
    response = Response(
        record["body"],
        status=record["status"],
        mimetype=PROBLEM_JSON if record["status"] >= 400 else "application/json",
    )
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _request_fingerprint() -> str:
    """What makes two requests the same for Idempotency-Key: method, path with query, and
    the body's content (for multipart, each part's name, filename and bytes: boundaries
    are random per attempt)."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.full_path}".encode())
    if request.mimetype == "multipart/form-data":
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"form:{name}={value}".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            digest.update(f"file:{name}:{upload.filename}".encode())
            digest.update(upload.stream.read())
            upload.stream.seek(0)
    else:
        digest.update(request.get_data())
    return digest.hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lease_s(settings: Settings) -> float:
    """How long a first attempt holds its key before a retry may take over: a view
    makes a few RPCs, each bounded by the RPC timeout."""
    return 3 * settings.rpc_timeout


def _now() -> datetime:
    # Idempotency records expire by mongod's TTL monitor: stamped by the system clock.
    return current_app.extensions.get("system_clock", utc_now)()
