"""Change records in MongoDB (`domain/change_records.py` says what they hold): written
with a batch's facts in its transaction, merged into the summaries many at a time, and
read on top of the summaries by the boards until they are.

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
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from services.assessment import store
from services.assessment.domain.change_records import Totals, periods_of_record, records_of
from services.assessment.domain.periods import Period
from services.assessment.domain.summaries import Changes

# A transaction that met a concurrent write is run again, after a short random pause, at
# most this many times in all: replicas race on the same cases and records.
ATTEMPTS = 30
PAUSE_S = 0.002
# A period's pending records are merged once a process has folded batches of this many
# facts into it, or written this many records of it (what a board adds up on top of the
# summaries stays bounded), whichever comes first; the service also merges everything
# pending on a timer. So a week, month, quarter or year (a record from every batch) is
# written to the summaries once for tens of thousands of facts, a day about once.
MERGE_AFTER_FACTS = 100_000
MERGE_AFTER_RECORDS = 48
RECORDS_PER_MERGE = 64  # records of a period merged per transaction (a bounded transaction)
UPDATES_PER_COMMAND = 5000
WRITE_CONFLICT = 112

T = TypeVar("T")
_log = logging.getLogger(__name__)


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
    per-operation objects would cost more than the updates)."""
    for start in range(0, len(updates), UPDATES_PER_COMMAND):
        chunk = updates[start : start + UPDATES_PER_COMMAND]
        reply = db.command(
            {"update": collection, "updates": chunk, "ordered": False}, session=session
        )
        if reply.get("writeErrors"):
            raise OperationFailure(f"{collection}: {reply['writeErrors'][0]}")


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


# per client, per period: [facts, records] this process folded since it last merged it
_UNMERGED: dict[int, dict[str, list[int]]] = {}
_MERGING: dict[int, threading.Lock] = {}


def folded(db: Database, facts: int, written: dict[str, int]) -> None:
    """Count what this process folded into each period; the periods where enough was are
    merged in the background (`merge_in_background`): the next batch folds meanwhile."""
    unmerged = _UNMERGED.setdefault(id(db.client), {})
    due = []
    for period, records in written.items():
        counted = unmerged.setdefault(period, [0, 0])
        counted[0] += facts
        counted[1] += records
        if counted[0] >= MERGE_AFTER_FACTS or counted[1] >= MERGE_AFTER_RECORDS:
            due.append(period)
    if due:
        merge_in_background(db, due)


# per client: the periods due for the background merger, and the merger while it runs
_DUE: dict[int, set[str]] = {}
_MERGER: dict[int, threading.Thread] = {}
_DUE_LOCK = threading.Lock()


def merge_in_background(db: Database, periods: Collection[str]) -> None:
    """Merge these periods in a thread of this process (a green thread in the services),
    one merger per client taking whatever falls due while it runs. A merge mostly waits
    on mongod's upserts while a fold mostly computes, so the two overlap. A merge that
    fails leaves its records pending (boards read them; the service's timer merges them
    again): nothing is lost."""
    key = id(db.client)
    with _DUE_LOCK:
        _DUE.setdefault(key, set()).update(periods)
        if key in _MERGER:
            return
        _MERGER[key] = merger = threading.Thread(
            target=_merge_what_is_due, args=(db,), name="summary-merger", daemon=True
        )
    merger.start()


def _merge_what_is_due(db: Database) -> None:
    key = id(db.client)
    while True:
        with _DUE_LOCK:
            due = _DUE.get(key)
            if not due:
                _MERGER.pop(key, None)
                return
            periods = sorted(due)
            due.clear()
        try:
            merge(db, periods)
        except Exception:  # the merger goes on; the records stay pending
            _log.warning("merging %s failed: the records stay pending", periods, exc_info=True)


# ---------------------------------------------------------------------------- merging
def merge(db: Database, periods: Collection[str] | None = None) -> int:
    """Merge the pending records of the given periods (all by default) into the
    summaries, a period at a time, at most `RECORDS_PER_MERGE` records a transaction;
    how many were merged. One merge at a time per process: a second caller waits for
    the first (the background merger, say), then merges what is still pending."""
    lock = _MERGING.setdefault(id(db.client), threading.Lock())
    with lock:
        unmerged = _UNMERGED.setdefault(id(db.client), {})
        if periods is None:
            periods = db[store.CHANGES].distinct("period")
            unmerged.clear()
        merged = 0
        for period in periods:
            unmerged.pop(period, None)
            while True:
                with no_cyclic_collection():
                    done = retrying(db, lambda session, p=period: _merge_some(db, p, session))
                merged += done
                if done < RECORDS_PER_MERGE:
                    break
        return merged


def _merge_some(db: Database, period: str, session: ClientSession) -> int:
    found = list(
        db[store.CHANGES]
        .find({"period": period}, session=session)
        .sort("_id", 1)
        .limit(RECORDS_PER_MERGE)
    )
    if not found:
        return 0
    totals = Totals(found)
    run_updates(db, store.SUMMARIES, summary_writes(totals), session)
    run_updates(db, store.ACTIVITY, activity_writes(totals), session)
    ids = [record["_id"] for record in found]
    deleted = db[store.CHANGES].delete_many({"_id": {"$in": ids}}, session=session)
    if deleted.deleted_count != len(ids):  # merged meanwhile: abort, nothing applied twice
        raise OperationFailure(
            "change records merged by another writer",
            WRITE_CONFLICT,
            {"errorLabels": ["TransientTransactionError"]},
        )
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
