"""The live summaries in MongoDB (`domain/summaries.py` says what they hold): facts
stored once each, their changes to the summaries recorded in the same transaction and
merged into the summaries later, and boards read from the summaries and the records
not merged yet.

A batch of facts is one transaction: the facts are inserted, the states of their cases
read and written back, and what the batch adds to the subjects' summaries written as a
few change records, one per period (`summary_changes.py`); in a background thread,
beside the next fold, a period's records are compacted into their sums once many are
pending, and merged into the summaries (`$inc`, `$addToSet`, many batches in one upsert
a subject) once the facts have moved past it; the service's timer merges every pending
record. A fact delivered twice
fails the insert (its id is stored): the batch runs again without it and changes
nothing for it; two replicas folding facts of the same case at once meet a write
conflict, and the loser runs its batch again from fresh reads, so nothing is lost or
counted twice. The event handlers take their deliveries in batches
(`gridwork_common.event_batches`), a replay or a load folds thousands per transaction:
fewer round trips, the same code."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace

from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from gridwork_common.meanwhile import computed, meanwhile
from services.assessment import store, summary_changes, summary_upkeep
from services.assessment.domain import patrols as patrolling
from services.assessment.domain.change_records import Totals
from services.assessment.domain.indicators import TERRITORY_LEVELS, Indicators
from services.assessment.domain.periods import Period
from services.assessment.domain.summaries import (
    Changes,
    case_as_read,
    case_as_stored,
    finish,
    fold,
    is_case_fact,
    nearest_rank_of_histogram,
    p90_bucket,
)
from services.assessment.patrol_facts import patrol_counts


def record(db: Database, facts: Iterable[Mapping]) -> int:
    """Store the facts not stored before and fold them into the summaries: the facts and
    their change records in one transaction, compacted or merged into the summaries
    later (`summary_upkeep.folded`); how many were new."""
    unique: dict = {}
    for fact in facts:
        unique.setdefault(fact["_id"], fact)  # a fact twice in a batch: the first counts
    batch = list(unique.values())
    with _folding(db), summary_changes.no_cyclic_collection():
        recorded, written = _record_retrying(db, batch)
    summary_upkeep.folded(db, recorded, written)
    return recorded


def merge(db: Database) -> int:
    """Merge every pending change record into the summaries; how many were merged."""
    return summary_changes.merge(db)


# One fold at a time per MongoDB client (a service replica has one): its handlers would
# only conflict with one another on the cases of the county; replicas still race, and
# retry.
_FOLDING: dict[int, threading.Lock] = {}


def _folding(db: Database) -> threading.Lock:
    return _FOLDING.setdefault(id(db.client), threading.Lock())


def _record_retrying(db: Database, batch: list[Mapping]) -> tuple[int, dict[str, int]]:
    # Facts are new nearly always: they are inserted without asking first. A fact stored
    # before fails the insert (and the transaction with it); the batch then runs again,
    # asking which of its facts are stored.
    all_new = [True]

    def work(session: ClientSession) -> tuple[int, dict[str, int]]:
        try:
            return _record(db, batch, session, all_new[0])
        except BulkWriteError as exc:
            if all_new[0] and _only_duplicates(exc):
                all_new[0] = False
                raise _AskFirst from exc
            raise

    while True:
        try:
            return summary_changes.retrying(db, work)
        except _AskFirst:
            continue


class _AskFirst(Exception):
    """Some facts of the batch were stored before: run it again, asking which."""


def _only_duplicates(exc: BulkWriteError) -> bool:
    errors = exc.details.get("writeErrors") or [{}]
    return all(error.get("code") == DUPLICATE_KEY for error in errors)


DUPLICATE_KEY = 11000
# A batch of this many facts is folded while mongod stores them (a load, a replay)
OVERLAP_FROM_FACTS = 500


def _record(
    db: Database, batch: list[Mapping], session: ClientSession, all_new: bool
) -> tuple[int, dict[str, int]]:
    """The batch's new facts stored, cases updated and change records written: (how
    many facts were new, how many records each period got)."""
    facts = db[store.FACTS]
    fresh = batch
    if not all_new:
        ids = [fact["_id"] for fact in batch]
        found = facts.find({"_id": {"$in": ids}}, {"_id": 1}, session=session)
        stored = {doc["_id"] for doc in found}
        fresh = [fact for fact in batch if fact["_id"] not in stored]
    if not fresh:
        return 0, {}
    case_ids = list({fact["incident_id"] for fact in fresh if is_case_fact(fact)})
    cases = {}
    if case_ids:
        found = db[store.CASES].find({"_id": {"$in": case_ids}}, session=session)
        cases = {doc["_id"]: case_as_read(doc) for doc in found}
    known = set(cases)  # the others are new: inserted, which costs mongod less than upserts
    changes = Changes()
    if len(fresh) >= OVERLAP_FROM_FACTS:
        # mongod stores the facts while this process folds them (the fold reads the facts
        # and never the session; a fact stored before fails the insert, and the batch
        # runs again)
        with meanwhile(lambda: facts.insert_many(fresh, session=session)):
            computed(fold, fresh, cases, changes)
    else:  # the handlers' few facts: a thread would cost more than it hides
        facts.insert_many(fresh, session=session)
        fold(fresh, cases, changes)
    _store_cases(db, cases, case_ids, known, session)
    # the subjects' changes wait in a few records, merged into the summaries later
    return len(fresh), summary_changes.write(db, changes, session)


def _store_cases(
    db: Database, cases: dict, case_ids: list, known: set, session: ClientSession
) -> None:
    new = [{"_id": id_, **case_as_stored(cases[id_])} for id_ in case_ids if id_ not in known]
    if new:
        try:
            db[store.CASES].insert_many(new, session=session)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise
            # stored by another replica meanwhile: the batch runs again from fresh reads
            raise summary_changes.lost_race("a case stored by another writer") from exc
    summary_changes.run_updates(
        db,
        store.CASES,
        [{"q": {"_id": id_}, "u": case_as_stored(cases[id_])} for id_ in known],
        session,
    )


def indicators_by_level(
    db: Database,
    levels: Collection[str],
    period: Period,
    working_days: Collection[str],
    subject=None,
) -> dict[str, dict]:
    """The indicators of every subject of each level (or of one `subject`) for a period,
    read from the summaries and the change records not merged into them yet, in one
    snapshot: `domain.indicators.indicators_by_subject` over the facts, without reading
    a fact."""
    with db.client.start_session(snapshot=True) as session:
        return _indicators_by_level(db, levels, period, working_days, subject, session)


def _indicators_by_level(db, levels, period, working_days, subject, session) -> dict[str, dict]:
    query: dict = {"period": period.text, "level": {"$in": list(levels)}}
    if subject is not None:
        query["subject"] = subject
    # the histograms stay on the server: a summary's handling count, total and p90 come
    # from its bucket totals and the one bucket holding the p90 (`_handling`)
    stored = db[store.SUMMARIES].find(
        query, {"period": 0, "minutes": 0, "grid_workers": 0}, session=session
    )
    overlay = summary_changes.pending(db, period, session)
    text = period.text
    summaries = {(doc["subject"], doc["level"]): overlay.apply(text, doc) for doc in stored}
    for level, who in overlay.subjects(text, levels, subject):
        if (who, level) not in summaries:  # only in records yet
            summaries[who, level] = overlay.apply(
                text, {"_id": None, "level": level, "subject": who}
            )
    activity: dict = {"period": period.text}
    if subject is not None:
        people = {person for summary in summaries.values() for person in summary.get("people", ())}
        activity["person"] = {"$in": list(people)}
    active = {
        doc["person"]: doc["days"]
        for doc in db[store.ACTIVITY].find(
            activity, {"_id": 0, "person": 1, "days": 1}, session=session
        )
    }
    for person, days in overlay.active_days(text).items():
        active[person] = set(active.get(person, ())) | days
    handling = _handling(db, summaries, overlay, text, session)
    found: dict[str, dict] = {level: {} for level in levels}
    for who, summary in summaries.items():
        counted = finish(
            summary["level"],
            counts=summary.get("counts", {}),
            handling=handling[who],
            required=summary.get("required", {}),
            done=summary.get("done", {}),
            people=summary.get("people", ()),
            active_days=active,
            working_days=working_days,
        )
        if counted is not None:
            found[summary["level"]][summary["subject"]] = counted
    _add_patrols(db, found, period, subject, overlay, session)
    return found


def _handling(
    db: Database,
    summaries: dict[tuple, dict],
    overlay: Totals,
    period: str,
    session: ClientSession,
) -> dict[tuple, tuple[int, int, int | None]]:
    """Each summary's handling count, total minutes and p90, by (subject, level): the
    count and total from its bucket totals and sum, the p90 from the one bucket holding
    its rank, read for the summaries whose p90 lies in each bucket (one query a bucket,
    a bucket holding at most 100 values) rather than every whole histogram; the pending
    records' minutes in that bucket added."""
    found, by_bucket = {}, defaultdict(list)
    for who, summary in summaries.items():
        buckets = {int(b): cases for b, cases in summary.get("minute_counts", {}).items()}
        place = p90_bucket(buckets)
        found[who] = (sum(buckets.values()), summary.get("minute_sum", 0), None)
        if place is not None:
            by_bucket[place[0]].append((summary["_id"], who, place[1]))
    for bucket, wanted in by_bucket.items():
        ids = [id_ for id_, _, _ in wanted if id_ is not None]
        values = {
            (doc["_id"]["s"], doc["_id"]["l"]): doc.get("minutes", {}).get(str(bucket), {})
            for doc in db[store.SUMMARIES].find(
                {"_id": {"$in": ids}}, {f"minutes.{bucket}": 1}, session=session
            )
        }
        for _, who, rank in wanted:
            histogram = {int(value): cases for value, cases in values.get(who, {}).items()}
            for value, cases in overlay.bucket(period, who[1], who[0], bucket).items():
                histogram[value] = histogram.get(value, 0) + cases
            count, total, _ = found[who]
            found[who] = (count, total, nearest_rank_of_histogram(histogram, rank))
    return found


def _add_patrols(
    db: Database,
    found: dict[str, dict],
    period: Period,
    subject,
    overlay: Totals,
    session: ClientSession,
) -> None:
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
            session=session,
        )
        for grid in grids:
            for person in grid["grid_workers"]:
                worked[person].add(grid["subject"])
        for grid, people in overlay.grid_workers_of(period.text).items():
            for person in people:
                worked[person].add(grid)
    patrolled = patrol_counts(db[store.FACTS], dated, list(found), within, dict(worked), session)
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
