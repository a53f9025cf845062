"""The live summaries in MongoDB (`domain/summaries.py` says what they hold): facts
stored once each and folded into the summaries in the same transaction, and boards read
from the summaries.

A batch of facts is one transaction: the facts are inserted, the states of their cases
read, and every change written (`$inc` on the subjects' summaries, `$addToSet` for
people and active days, the cases' new states). A fact delivered twice fails the insert
(its id is stored): the batch runs again without it and changes nothing for it; two
replicas folding facts of the same case or subject at once meet a write conflict, and
the loser runs its batch again from fresh reads, so nothing is lost or counted twice.
The event handlers take their deliveries in batches (`gridwork_common.event_batches`),
a replay or a load folds thousands per transaction: fewer round trips, the same code."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import replace

from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from services.assessment import store
from services.assessment.domain import patrols as patrolling
from services.assessment.domain.indicators import TERRITORY_LEVELS, Indicators
from services.assessment.domain.periods import Period
from services.assessment.domain.summaries import (
    Changes,
    finish,
    fold,
    is_case_fact,
    nearest_rank_of_histogram,
    p90_bucket,
)
from services.assessment.patrol_facts import patrol_counts

# A batch that met a concurrent write is run again, after a short random pause, at most
# this many times in all: replicas race on the county's summaries with every fact.
ATTEMPTS = 30
PAUSE_S = 0.002


def record(db: Database, facts: Iterable[Mapping]) -> int:
    """Store the facts not stored before and fold them into the summaries, in one
    transaction; how many were new."""
    unique: dict = {}
    for fact in facts:
        unique.setdefault(fact["_id"], fact)  # a fact twice in a batch: the first counts
    batch = list(unique.values())
    with _folding(db), _no_cyclic_collection():
        return _record_retrying(db, batch)


@contextmanager
def _no_cyclic_collection():
    """A batch makes a great many small dicts and no reference cycles: the cyclic
    collector would only scan them again and again (a third of the folding's time),
    so it waits until the batch is written."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# One fold at a time per MongoDB client (a service replica has one): its handlers would
# only conflict with one another on the county's summaries (every fact counts for them);
# replicas still race, and retry.
_FOLDING: dict[int, threading.Lock] = {}


def _folding(db: Database) -> threading.Lock:
    return _FOLDING.setdefault(id(db.client), threading.Lock())


def _record_retrying(db: Database, batch: list[Mapping]) -> int:
    # Facts are new nearly always: they are inserted without asking first. A fact stored
    # before fails the insert (and the transaction with it); the batch then runs again,
    # asking which of its facts are stored.
    all_new = True
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.client.start_session() as session, session.start_transaction():
                return _record(db, batch, session, all_new)
        except PyMongoError as exc:
            if all_new and isinstance(exc, BulkWriteError) and _only_duplicates(exc):
                all_new = False
                continue
            if attempt < ATTEMPTS and _raced(exc):
                time.sleep(random.uniform(0, PAUSE_S * attempt))  # noqa: S311 (a jitter)
                continue
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _only_duplicates(exc: BulkWriteError) -> bool:
    errors = exc.details.get("writeErrors") or [{}]
    return all(error.get("code") == DUPLICATE_KEY for error in errors)


DUPLICATE_KEY = 11000


def _raced(exc: PyMongoError) -> bool:
    """Lost a race with another writer (worth running again from fresh reads), not an
    outage (the caller fails, and the message is redelivered or the load stops)."""
    if isinstance(exc, ConnectionFailure):
        return False
    if isinstance(exc, DuplicateKeyError):  # a fact stored by another replica meanwhile
        return True
    return exc.has_error_label("TransientTransactionError") or exc.has_error_label(
        "UnknownTransactionCommitResult"
    )


def _record(db: Database, batch: list[Mapping], session: ClientSession, all_new: bool) -> int:
    facts = db[store.FACTS]
    fresh = batch
    if not all_new:
        ids = [fact["_id"] for fact in batch]
        found = facts.find({"_id": {"$in": ids}}, {"_id": 1}, session=session)
        stored = {doc["_id"] for doc in found}
        fresh = [fact for fact in batch if fact["_id"] not in stored]
    if not fresh:
        return 0
    facts.insert_many(fresh, session=session)
    case_ids = list({fact["incident_id"] for fact in fresh if is_case_fact(fact)})
    cases = {}
    if case_ids:
        found = db[store.CASES].find({"_id": {"$in": case_ids}}, session=session)
        cases = {doc.pop("_id"): doc for doc in found}
    changes = Changes()
    fold(fresh, cases, changes)
    _update(
        db,
        store.CASES,
        [{"q": {"_id": id_}, "u": cases[id_], "upsert": True} for id_ in case_ids],
        session,
    )
    _update(db, store.SUMMARIES, _summary_writes(changes), session)
    activity = [
        {
            "q": {"_id": {"p": period, "a": person}},
            "u": {
                "$setOnInsert": {"period": period, "person": person},
                "$addToSet": {"days": {"$each": sorted(days)}},
            },
            "upsert": True,
        }
        for (period, person), days in changes.active.items()
    ]
    _update(db, store.ACTIVITY, activity, session)
    return len(fresh)


UPDATES_PER_COMMAND = 5000
# handling-time histogram: minutes.<value // 100>.<value> = cases, with minute_counts.<value
# // 100> = the bucket's cases and minute_sum = the minutes of them all
MINUTES_BUCKET = 100


def _update(db: Database, collection: str, updates: list[dict], session: ClientSession) -> None:
    """Unordered update commands (a batch of thousands of small updates: the driver's
    per-operation objects would cost more than the updates)."""
    for start in range(0, len(updates), UPDATES_PER_COMMAND):
        chunk = updates[start : start + UPDATES_PER_COMMAND]
        reply = db.command(
            {"update": collection, "updates": chunk, "ordered": False}, session=session
        )
        if reply.get("writeErrors"):
            raise OperationFailure(f"{collection}: {reply['writeErrors'][0]}")


def _summary_writes(changes: Changes) -> list[dict]:
    writes = []
    for key in changes.touched:
        period, level, subject = key
        increments = {}
        for prefix, source in (
            ("counts", changes.counts),
            ("required", changes.required),
            ("done", changes.done),
        ):
            for name, value in source.get(key, {}).items():
                if value:
                    increments[f"{prefix}.{name}"] = value
        minute_sum = 0
        for minutes, cases in changes.minutes.get(key, {}).items():
            if cases:  # in buckets: an update finds its field among a few dozen, not thousands
                bucket = minutes // MINUTES_BUCKET
                increments[f"minutes.{bucket}.{minutes}"] = cases
                # each bucket's total and the sum beside the histogram: a read takes
                # these and one bucket, not the whole histogram
                counted = f"minute_counts.{bucket}"
                increments[counted] = increments.get(counted, 0) + cases
                minute_sum += minutes * cases
        if minute_sum:
            increments["minute_sum"] = minute_sum
        update: dict = {"$setOnInsert": {"period": period, "level": level, "subject": subject}}
        if increments:
            update["$inc"] = increments
        additions = {}
        for field, source in (("people", changes.people), ("grid_workers", changes.grid_workers)):
            added = source.get(key)
            if added:
                additions[field] = {"$each": list(added)}
        if additions:
            update["$addToSet"] = additions
        writes.append(
            {"q": {"_id": {"p": period, "l": level, "s": subject}}, "u": update, "upsert": True}
        )
    return writes


def indicators_by_level(
    db: Database,
    levels: Collection[str],
    period: Period,
    working_days: Collection[str],
    subject=None,
) -> dict[str, dict]:
    """The indicators of every subject of each level (or of one `subject`) for a period,
    read from the summaries: `domain.indicators.indicators_by_subject` over the facts,
    without reading a fact."""
    query: dict = {"period": period.text, "level": {"$in": list(levels)}}
    if subject is not None:
        query["subject"] = subject
    # the histograms stay on the server: a summary's handling count, total and p90 come
    # from its bucket totals and the one bucket holding the p90 (`_handling`)
    summaries = list(
        db[store.SUMMARIES].find(query, {"period": 0, "minutes": 0, "grid_workers": 0})
    )
    activity: dict = {"period": period.text}
    if subject is not None:
        people = {person for summary in summaries for person in summary.get("people", ())}
        activity["person"] = {"$in": list(people)}
    active = {
        doc["person"]: doc["days"]
        for doc in db[store.ACTIVITY].find(activity, {"_id": 0, "person": 1, "days": 1})
    }
    handling = _handling(db, summaries)
    found: dict[str, dict] = {level: {} for level in levels}
    for summary in summaries:
        counted = finish(
            summary["level"],
            counts=summary.get("counts", {}),
            handling=handling[summary["subject"], summary["level"]],
            required=summary.get("required", {}),
            done=summary.get("done", {}),
            people=summary.get("people", ()),
            active_days=active,
            working_days=working_days,
        )
        if counted is not None:
            found[summary["level"]][summary["subject"]] = counted
    _add_patrols(db, found, period, subject)
    return found


def _handling(db: Database, summaries: list[dict]) -> dict[tuple, tuple[int, int, int | None]]:
    """Each summary's handling count, total minutes and p90, by (subject, level): the
    count and total from its bucket totals and sum, the p90 from the one bucket holding
    its rank, read for the summaries whose p90 lies in each bucket (one query a bucket,
    a bucket holding at most 100 values) rather than every whole histogram."""
    found, by_bucket = {}, defaultdict(list)
    for summary in summaries:
        buckets = {int(b): cases for b, cases in summary.get("minute_counts", {}).items()}
        place = p90_bucket(buckets)
        who = (summary["subject"], summary["level"])
        found[who] = (sum(buckets.values()), summary.get("minute_sum", 0), None)
        if place is not None:
            by_bucket[place[0]].append((summary["_id"], who, place[1]))
    for bucket, wanted in by_bucket.items():
        ids = [id_ for id_, _, _ in wanted]
        values = {
            (doc["_id"]["s"], doc["_id"]["l"]): doc.get("minutes", {}).get(str(bucket), {})
            for doc in db[store.SUMMARIES].find({"_id": {"$in": ids}}, {f"minutes.{bucket}": 1})
        }
        for _, who, rank in wanted:
            histogram = {int(value): cases for value, cases in values[who].items()}
            count, total, _ = found[who]
            found[who] = (count, total, nearest_rank_of_histogram(histogram, rank))
    return found


def _add_patrols(db: Database, found: dict[str, dict], period: Period, subject) -> None:
    """Patrol counts, not yet summarized: from the period's patrol facts when read (their
    pipelines, `patrol_facts.py`); a subject with patrols and nothing else is listed."""
    first, last = period.day_texts()
    dated: dict = {"day": {"$gte": first, "$lte": last}}
    within = subject if subject is not None and set(found) <= set(TERRITORY_LEVELS) else None
    if within is not None:
        dated["path"] = within
    worked: dict = defaultdict(set)  # each person's grids: from the grids' summaries
    if "worker" in found:
        grids = db[store.SUMMARIES].find(
            {"period": period.text, "level": "grid", "grid_workers": {"$exists": True}},
            {"subject": 1, "grid_workers": 1},
        )
        for grid in grids:
            for person in grid["grid_workers"]:
                worked[person].add(grid["subject"])
    patrolled = patrol_counts(db[store.FACTS], dated, list(found), within, dict(worked))
    for (level, who), counts in patrolled.items():
        if subject is not None and who != subject:
            continue
        if who in found[level]:
            found[level][who] = replace(found[level][who], **counts)
        elif patrolling.shows_patrolling(counts) and level != "worker":
            found[level][who] = Indicators(**counts)


def indicators_of(
    db: Database, level: str, subject: str, period: Period, working_days: Collection[str]
) -> Indicators:
    """One subject's indicators for a period (all zero when it has none)."""
    found = indicators_by_level(db, [level], period, working_days, subject)[level]
    return found.get(subject, Indicators())
