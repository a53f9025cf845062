"""Change records in MongoDB (`domain/change_records.py` says what they hold): written
with a batch's facts in its transaction, compacted while their periods fill, merged into
the summaries many at a time, and read on top of the summaries by the boards until they
are.

A period's records are compacted once many are pending (`summary_upkeep.py` says when):
they are replaced by their sums, one record per period or periods alike
(`change_records.compacted`), in one transaction. So what a board adds up on top of
the summaries stays bounded, and a long period (a month, quarter, year: a record from
every batch) is not written to the summaries again and again while it fills: one upsert
a subject costs mongod far more than one record of all of them. Compacting is a merge
that writes one document instead of the summaries; the same race rules hold.

A merge takes a period's pending records (a record of periods alike is merged into
each of them), adds them up, applies the sums to the summaries (one upsert a subject for
all those batches) and deletes the records, in one transaction: a crash before the
commit leaves the records pending and the summaries as they were, so nothing is lost or
counted twice; two replicas merging the same records meet a write conflict on their
deletion, and the loser runs again from fresh reads, finding them gone. A board reads
the summaries and the pending records in one snapshot, so it sees a record either
pending or merged, never both nor neither."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TypeVar

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from services.assessment import store
from services.assessment.domain.change_records import (
    Totals,
    compacted,
    periods_of_record,
    records_of,
)
from services.assessment.domain.periods import Period
from services.assessment.domain.summaries import Changes

# A transaction that met a concurrent write is run again, after a short random pause, at
# most this many times in all: replicas race on the same cases and records.
ATTEMPTS = 30
PAUSE_S = 0.002
RECORDS_PER_MERGE = 64  # records of a period merged per transaction (a bounded transaction)
UPDATES_PER_COMMAND = 5000
BYTES_PER_COMMAND = 8 * 1024 * 1024  # well within the 16 MB of a command, with its overhead
WRITE_CONFLICT = 112

T = TypeVar("T")


def retrying(db: Database, work: Callable[[ClientSession], T]) -> T:
    """`work` in a transaction, run again (from fresh reads) when it lost a race."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.client.start_session() as session, session.start_transaction():
                return work(session)
        except PyMongoError as exc:
            if attempt < ATTEMPTS and raced(exc):
                time.sleep(random.uniform(0, PAUSE_S * attempt))  # noqa: S311 (a jitter)
                continue
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def raced(exc: PyMongoError) -> bool:
    """Lost a race with another writer (worth running again from fresh reads), not an
    outage (the caller fails, and the message is redelivered or the load stops)."""
    if isinstance(exc, ConnectionFailure):
        return False
    if isinstance(exc, DuplicateKeyError):  # a fact stored by another replica meanwhile
        return True
    return exc.has_error_label("TransientTransactionError") or exc.has_error_label(
        "UnknownTransactionCommitResult"
    )


def run_updates(db: Database, collection: str, updates: list[dict], session: ClientSession) -> None:
    """Unordered update commands (thousands of small updates: the driver's
    per-operation objects would cost more than the updates), each within MongoDB's
    size of a command: the updates are encoded once, and a command takes as many as fit
    (a long period's merge adds large sets of people)."""
    for chunk in _commands(updates):
        reply = db.command(
            {"update": collection, "updates": chunk, "ordered": False}, session=session
        )
        if reply.get("writeErrors"):
            raise OperationFailure(f"{collection}: {reply['writeErrors'][0]}")


def _commands(updates: list[dict]) -> Iterator[list[RawBSONDocument]]:
    chunk: list[RawBSONDocument] = []
    size = 0
    for update in updates:
        encoded = RawBSONDocument(bson.encode(update))
        if chunk and (
            len(chunk) == UPDATES_PER_COMMAND or size + len(encoded.raw) > BYTES_PER_COMMAND
        ):
            yield chunk
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded.raw)
    if chunk:
        yield chunk


# how many folds and merges of this process have the cyclic collector paused, and whether
# it ran before the first of them paused it (a fold and a background merge overlap)
_PAUSED = {"holders": 0, "was_enabled": False}
_PAUSE_LOCK = threading.Lock()


@contextmanager
def no_cyclic_collection() -> Iterator[None]:
    """A batch (or a merge) makes a great many small dicts and no reference cycles: the
    cyclic collector would only scan them again and again (a third of the folding's
    time, two thirds of a merge's), so it waits until the last of them is written."""
    with _PAUSE_LOCK:
        if _PAUSED["holders"] == 0:
            _PAUSED["was_enabled"] = gc.isenabled()
            gc.disable()
        _PAUSED["holders"] += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _PAUSED["holders"] -= 1
            if _PAUSED["holders"] == 0 and _PAUSED["was_enabled"]:
                gc.enable()


# ---------------------------------------------------------------------------- writing
def write(db: Database, changes: Changes, session: ClientSession) -> dict[str, int]:
    """A batch's changes as records (in the batch's transaction); how many records each
    period got."""
    records = records_of(changes)
    if records:
        db[store.CHANGES].insert_many(records, session=session)
    written: dict[str, int] = {}
    for record in records:
        for period in periods_of_record(record):
            written[period] = written.get(period, 0) + 1
    return written


_MERGING: dict[int, threading.Lock] = {}
_MERGING_LOCK = threading.Lock()


def _one_at_a_time(db: Database) -> threading.Lock:
    """One merge or compaction at a time per process (a second waits for the first)."""
    with _MERGING_LOCK:
        return _MERGING.setdefault(id(db.client), threading.Lock())


# ---------------------------------------------------------------------------- compacting
def compact(db: Database, periods: Collection[str]) -> int:
    """Replace the pending records of these periods (the oldest `RECORDS_PER_MERGE` of
    each) by their sums; how many records were replaced."""
    with _one_at_a_time(db):
        replaced = 0
        for period in periods:
            with no_cyclic_collection():
                replaced += retrying(db, lambda session, p=period: _compact_some(db, p, session))
        return replaced


def _compact_some(db: Database, period: str, session: ClientSession) -> int:
    found = _oldest_pending(db, period, session)
    replacing = compacted(found)
    if len(replacing) >= len(found):  # nothing to gain (one record a period, say)
        return 0
    db[store.CHANGES].insert_many(replacing, session=session)
    _delete(db, found, session)
    return len(found)


# ---------------------------------------------------------------------------- merging
def merge(db: Database, periods: Collection[str] | None = None) -> int:
    """Merge the pending records of the given periods (all by default) into the
    summaries, a period at a time, at most `RECORDS_PER_MERGE` records a transaction;
    how many were merged. A caller waits for a merge or compaction under way in this
    process (in the background, say), then merges what is still pending."""
    with _one_at_a_time(db):
        if periods is None:
            periods = db[store.CHANGES].distinct("period")
        merged = 0
        for period in periods:
            while True:
                with no_cyclic_collection():
                    done = retrying(db, lambda session, p=period: _merge_some(db, p, session))
                merged += done
                if done < RECORDS_PER_MERGE:
                    break
        return merged


def _oldest_pending(db: Database, period: str, session: ClientSession) -> list[dict]:
    return list(
        db[store.CHANGES]
        .find({"period": period}, session=session)
        .sort("_id", 1)
        .limit(RECORDS_PER_MERGE)
    )


def _delete(db: Database, records: list[dict], session: ClientSession) -> None:
    """The records merged or compacted, deleted; if another writer did so meanwhile, the
    transaction aborts (run again from fresh reads): nothing is applied twice."""
    ids = [record["_id"] for record in records]
    deleted = db[store.CHANGES].delete_many({"_id": {"$in": ids}}, session=session)
    if deleted.deleted_count != len(ids):
        raise lost_race("change records merged by another writer")


def lost_race(what: str) -> OperationFailure:
    """A write conflict found by this process (`retrying` runs the transaction again)."""
    return OperationFailure(what, WRITE_CONFLICT, {"errorLabels": ["TransientTransactionError"]})


def _merge_some(db: Database, period: str, session: ClientSession) -> int:
    found = _oldest_pending(db, period, session)
    if not found:
        return 0
    totals = Totals(found)
    run_updates(db, store.SUMMARIES, summary_writes(totals), session)
    run_updates(db, store.ACTIVITY, activity_writes(totals), session)
    _delete(db, found, session)
    return len(found)


def summary_writes(totals: Totals) -> list[dict]:
    writes = []
    people, grid_workers = totals.people, totals.grid_workers
    for key, added in totals.increments.items():
        period, level, subject = key
        update: dict = {"$setOnInsert": {"period": period, "level": level, "subject": subject}}
        if added:
            update["$inc"] = added
        additions = {}
        if key in people:
            additions["people"] = {"$each": list(people[key])}
        if key in grid_workers:
            additions["grid_workers"] = {"$each": list(grid_workers[key])}
        if additions:
            update["$addToSet"] = additions
        writes.append(
            {"q": {"_id": {"p": period, "l": level, "s": subject}}, "u": update, "upsert": True}
        )
    return writes


def activity_writes(totals: Totals) -> list[dict]:
    return [
        {
            "q": {"_id": {"p": period, "a": person}},
            "u": {
                "$setOnInsert": {"period": period, "person": person},
                "$addToSet": {"days": {"$each": sorted(days)}},
            },
            "upsert": True,
        }
        for (period, person), days in totals.active.items()
    ]


# ---------------------------------------------------------------------------- reading
def pending(db: Database, period: Period, session: ClientSession) -> Totals:
    """The period's records not merged yet, added up (read in the caller's snapshot)."""
    return Totals(db[store.CHANGES].find({"period": period.text}, {"_id": 0}, session=session))


def pending_records(db: Database) -> int:
    """How many records wait to be merged."""
    return db[store.CHANGES].count_documents({})
