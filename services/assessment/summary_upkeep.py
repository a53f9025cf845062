"""Keeping the change records few, in the background: after each fold, the periods due
(`domain/upkeep.py` says which) are compacted or merged by a worker thread of this
process (a green thread in the services), beside the next fold, which mostly computes
while the worker mostly waits on mongod. One worker per client takes whatever falls due
while it runs. A compaction or merge that fails leaves its records as they were (boards
read them; the service's timer merges them): nothing is lost."""

from __future__ import annotations

import logging
import threading

from pymongo.database import Database

from services.assessment import summary_changes
from services.assessment.domain.upkeep import Due, Upkeep

# A period's records are compacted once this process wrote this many of it (a board adds
# up at most about so many on top of the summaries), and merged once it folded this many
# facts without a record of it; the service's timer merges everything pending anyway.
COMPACT_AFTER_RECORDS = 48
QUIET_AFTER_FACTS = 10_000

_log = logging.getLogger(__name__)

# per client: what it folded, what is due for its worker, and the worker while it runs
_UPKEEP: dict[int, Upkeep] = {}
_DUE: dict[int, Due] = {}
_WORKER: dict[int, threading.Thread] = {}
_LOCK = threading.Lock()


def folded(db: Database, facts: int, written: dict[str, int]) -> None:
    """A batch folded (`facts` facts, so many records written of each period): hand
    what fell due to the background worker."""
    key = id(db.client)
    with _LOCK:
        upkeep = _UPKEEP.setdefault(key, Upkeep())
        due = upkeep.folded(facts, written, COMPACT_AFTER_RECORDS, QUIET_AFTER_FACTS)
        if not (due.compact or due.merge):
            return
        waiting = _DUE.setdefault(key, Due(compact=[], merge=[]))
        waiting.compact.extend(due.compact)
        waiting.merge.extend(due.merge)
        if key in _WORKER:
            return
        _WORKER[key] = worker = threading.Thread(
            target=_work, args=(db,), name="summary-upkeep", daemon=True
        )
    worker.start()


def working(db: Database) -> bool:
    """Whether the background worker of this client is at work."""
    with _LOCK:
        return id(db.client) in _WORKER


def _work(db: Database) -> None:
    key = id(db.client)
    while True:
        with _LOCK:
            due = _DUE.pop(key, None)
            if due is None:
                _WORKER.pop(key, None)
                return
        merging = set(due.merge)
        compacting = sorted(set(due.compact) - merging)
        for action, periods in (
            (summary_changes.merge, sorted(merging)),
            (summary_changes.compact, compacting),
        ):
            if not periods:
                continue
            try:
                action(db, periods)
            except Exception:  # the worker goes on; the records stay as they were
                _log.warning("%s of %s failed", action.__name__, periods, exc_info=True)
