"""Rebuilding the live summaries from the stored facts: for a database from an earlier
version (facts stored before the summaries existed, summaries without the parts added
since), or summaries in doubt.

The facts are moved aside (`facts` renamed to `facts_replaying`, one atomic command),
the summaries, cases, activity and change records dropped, and every fact folded again
through `summaries.record`, as the event handlers fold them, in batches (a batch of 500
or more is folded while mongod stores it), then everything merged. A rebuild cut short
(a crash, mongod away) is run again and goes on: it finds the facts aside, and facts
already folded again are stored already, so they change nothing (the CloudEvent id is
the key). Published scorecards and bulletins are kept as published.

Run it with the assessment service stopped: facts that arrive meanwhile are folded too
and count once, but boards read during a rebuild show only what is folded so far."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pymongo.database import Database

from gridwork_common.mongo import ensure_indexes
from services.assessment import store, summaries

REPLAYING = "facts_replaying"  # the facts while they are folded again
REBUILT = (store.SUMMARIES, store.CASES, store.ACTIVITY, store.CHANGES)
BATCH = 5000


def rebuild_summaries(
    db: Database, batch: int = BATCH, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Fold every stored fact into fresh summaries; how many facts were read aside and how
    many stored again (the same, unless a fact was already folded again by a rebuild cut
    short or by the service meanwhile)."""
    names = set(db.list_collection_names())
    if REPLAYING not in names:  # a rebuild that starts (not one that goes on)
        for name in REBUILT:
            db.drop_collection(name)
        if store.FACTS in names:
            db[store.FACTS].rename(REPLAYING)
    ensure_indexes(db, store.INDEXES)
    read = stored = 0
    for facts in _batches(db, batch):
        read += len(facts)
        stored += summaries.record(db, facts)
        if progress is not None:
            progress(read)
    summaries.merge(db)
    db.drop_collection(REPLAYING)
    return {"read": read, "stored": stored}


def _batches(db: Database, size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    # natural order: about the order they arrived in (any order folds the same)
    for fact in db[REPLAYING].find({}, batch_size=size):
        batch.append(fact)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
