"""Outbox entries the broker has confirmed, deleted off the request path a batch at a
time (gridwork_common/outbox.py sends them; gridwork_common/confirms.py confirms them).

The thread reading the broker's confirms hands each confirmed entry over; one green
thread per process deletes what was handed over in one command per database every
`WINDOW_S`, instead of one command per change. What a crash loses from a batch stays in
the outbox and the resend timer sends it again, which at least once allows (consumers
de-duplicate by CloudEvent id)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import eventlet
from eventlet.queue import LightQueue
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

log = logging.getLogger(__name__)

OUTBOX = "outbox"
WINDOW_S = 0.1  # how long a batch gathers before its command
MAX_BATCH = 1000  # entries per command
UNJOURNALED = WriteConcern(w=1)  # a delete lost in a crash only means a resend
_STOP = object()


class SentEntries:
    """`forget(db, entry_id)`: delete a confirmed entry from `db`'s outbox, batched."""

    def __init__(self):
        self.queue: LightQueue = LightQueue()
        self.thread = None

    def start(self, spawn: Callable = eventlet.spawn) -> None:
        self.thread = spawn(self._run)

    def stop(self) -> None:
        """Delete what was handed over, then return."""
        if self.thread is not None:
            self.queue.put(_STOP)
            self.thread.wait()
            self.thread = None

    def forget(self, db: Database, entry_id: str) -> None:
        self.queue.put((db, entry_id))

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is not _STOP:
                eventlet.sleep(WINDOW_S)
            batch = [first]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self._delete([item for item in batch if item is not _STOP])
            if _STOP in batch:
                return

    def _delete(self, batch: list[tuple[Database, str]]) -> None:
        by_database: dict[str, tuple[Database, list[str]]] = {}
        for db, entry_id in batch:
            by_database.setdefault(db.name, (db, []))[1].append(entry_id)
        for db, ids in by_database.values():
            try:
                db[OUTBOX].with_options(write_concern=UNJOURNALED).delete_many(
                    {"_id": {"$in": ids}}
                )
            except Exception:  # left in the outbox: the resend timer sends them again
                log.warning("confirmed events left in the outbox", exc_info=True)
