"""The transactional outbox: a change and the events announcing it are written in one
MongoDB transaction, and the events are sent after it commits.

A crash (or a broker that is down) between the commit and the send leaves the events in
the service's `outbox` collection, where the service's `resend_outbox` timer finds and
sends them; a failure before the commit leaves neither the change nor its events. So an
accepted change is announced at least once, and nothing is announced that did not happen.
Consumers de-duplicate by the CloudEvent `id`.

With a publisher with asynchronous confirms (gridwork_common.confirmed_events) the send
after the commit does not wait for the broker: an entry is deleted once the broker
confirms it (gridwork_common.sent_entries), and one it refuses stays for the timer.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from pymongo import ASCENDING, IndexModel
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, PyMongoError
from pymongo.write_concern import WriteConcern

from gridwork_common.clock import Clock, utc_now
from gridwork_common.events import EventPublisher
from gridwork_common.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE

log = logging.getLogger(__name__)
T = TypeVar("T")

OUTBOX = "outbox"
OUTBOX_INDEXES = {OUTBOX: [IndexModel([("created_at", ASCENDING)], name="created_at")]}
# Entries younger than this are left to the request that wrote them to send.
RESEND_AFTER_S = 10
RESEND_BATCH = 1000
DELETE_BATCH = 200  # sent entries deleted with one command
UNJOURNALED = WriteConcern(w=1)
# A change that met a concurrent write is run again at most this many times in all.
MAX_ATTEMPTS = 3


@dataclass
class Staged:
    """What one transaction announces: `announce(...)` stores an event in the outbox
    with the change (pass `session` to every write of the change)."""

    outbox: Outbox
    session: ClientSession
    entries: list[dict] = field(default_factory=list)  # every event announced, to send
    pending: list[dict] = field(default_factory=list)  # written by `flush`, one insert

    @property
    def ids(self) -> list[str]:
        return [entry["_id"] for entry in self.entries]

    def announce(
        self,
        routing_key: str,
        subject: str,
        data: dict,
        *,
        route: tuple[str, ...] = (),
        extensions: dict | None = None,
    ) -> None:
        if self.outbox.publisher is None:
            return  # nobody to announce to (tools that run without a broker)
        entry = self.outbox.entry(routing_key, subject, data, route, extensions)
        self.pending.append(entry)
        self.entries.append(entry)

    def flush(self) -> None:
        """Write the announced events in the transaction (before it commits): one
        insert however many a change announces (an import announces thousands)."""
        if self.pending:
            self.outbox.db[OUTBOX].insert_many(self.pending, session=self.session)
            self.pending = []


class Outbox:
    def __init__(self, db: Database, publisher: EventPublisher | None, clock: Clock = utc_now):
        self.db = db
        self.publisher = publisher
        self.clock = clock

    def entry(
        self,
        routing_key: str,
        subject: str,
        data: dict,
        route: tuple[str, ...] = (),
        extensions: dict | None = None,
    ) -> dict:
        full_key, envelope = self.publisher.envelope(
            routing_key, subject, data, route=route, extensions=extensions
        )
        return {
            "_id": envelope["id"],
            "routing_key": full_key,
            "envelope": envelope,
            "created_at": self.clock(),
        }

    def store(
        self, routing_key: str, subject: str, data: dict, *, journaled: bool = True
    ) -> dict | None:
        """An event that goes with no other change, stored for `send_entries` (one insert
        is atomic by itself: no transaction); the stored entry, or None without a
        publisher. `journaled=False` does not wait for the journal: for statistics,
        which a crash of mongod in the next few milliseconds may lose."""
        if self.publisher is None:
            return None
        entry = self.entry(routing_key, subject, data)
        outbox = self.db[OUTBOX]
        if not journaled:
            outbox = outbox.with_options(write_concern=UNJOURNALED)
        outbox.insert_one(entry)
        return entry

    def run(self, change: Callable[[Staged], T]) -> T:
        """`change(staged)` in one transaction, then send what it announced. A write
        conflict runs the whole change again (a few times); any other error aborts it and
        is raised at once. Not the driver's `with_transaction`: it also retries while mongod
        cannot be reached, for up to two minutes, holding the caller's worker all along,
        where an outage must fail fast (503) and be retried by the client."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self.db.client.start_session() as session:
                staged = Staged(self, session)
                try:
                    with session.start_transaction():
                        result = change(staged)
                        staged.flush()
                except PyMongoError as exc:
                    if attempt < MAX_ATTEMPTS and _conflicted(exc):
                        continue
                    raise
            self.send_entries(staged.entries)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    def send(self, ids: list[str]) -> int:
        """Send the given entries (oldest first), deleting each once the broker has it.
        A send that fails leaves the rest to `resend`; the change stands either way."""
        if not ids or self.publisher is None:
            return 0
        try:
            return self._send({"_id": {"$in": ids}})
        except Exception:  # the broker (or mongod) is down: the timer sends them later
            log.warning("events left in the outbox for the timer", exc_info=True)
            return 0

    def publish_entries(self, entries: list[dict]) -> list[str]:
        """Send entries from memory, in order; the ids of those the broker took (all of
        them unless it failed: the rest are left to a timer)."""
        if not entries or self.publisher is None:
            return []
        sent: list[str] = []
        try:
            for entry in entries:
                self.publisher.send(entry["routing_key"], entry["envelope"])
                sent.append(entry["_id"])
        except Exception:  # the broker is down: the timer sends the rest later
            log.warning("events left in the outbox for the timer", exc_info=True)
        return sent

    def send_entries(self, entries: list[dict]) -> int:
        """Send entries this process has just committed, from memory (no read back), and
        delete them in one command: one round trip to mongod for the lot, not two per
        event. A send that fails leaves the unsent ones to `resend`. With a publisher
        with asynchronous confirms, this returns once they are written, and each is
        deleted (in a batch) once the broker confirms it."""
        if self.publisher is not None and self.publisher.sent_entries is not None:
            return self._send_without_waiting(entries)
        sent = self.publish_entries(entries)
        if sent:
            try:
                # Acknowledged without waiting for the journal: a delete lost in a crash
                # only means a resend, which at least once allows.
                self.db[OUTBOX].with_options(write_concern=UNJOURNALED).delete_many(
                    {"_id": {"$in": sent}}
                )
            except PyMongoError:  # sent but kept: the timer sends them again (at least once)
                log.warning("sent events left in the outbox", exc_info=True)
        return len(sent)

    def _send_without_waiting(self, entries: list[dict]) -> int:
        forget = self.publisher.sent_entries.forget
        written = 0
        for entry in entries:
            confirmed = functools.partial(forget, self.db, entry["_id"])
            if not self.publisher.send_confirmed(
                entry["routing_key"], entry["envelope"], confirmed
            ):
                break  # the broker is down: this and the rest are left to `resend`
            written += 1
        return written

    def resend(self, older_than_s: float = RESEND_AFTER_S) -> int:
        """What a crash or a broker outage left behind (a service timer calls this)."""
        if self.publisher is None:
            return 0
        try:
            return self._send(
                {"created_at": {"$lt": self.clock() - timedelta(seconds=older_than_s)}}
            )
        finally:
            self.record_backlog()

    def record_backlog(self) -> None:
        """What is still waiting, for /metrics (an outbox that does not drain alerts)."""
        try:
            waiting, oldest = self.backlog()
        except PyMongoError:
            return  # mongod is down: the service's own health says so
        record_backlog(self.db.name, waiting, oldest, self.clock())

    def backlog(self) -> tuple[int, datetime | None]:
        """How many entries wait, and when the oldest was written."""
        waiting = self.db[OUTBOX].estimated_document_count()
        oldest = self.db[OUTBOX].find_one({}, sort=[("created_at", ASCENDING)])
        return waiting, oldest["created_at"] if oldest else None

    def _send(self, query: dict) -> int:
        """Publish the matching entries, then delete the sent ones a batch at a time (a
        round trip per event was most of a large import's time). A crash between a send
        and its delete sends that event again; consumers de-duplicate by `id`."""
        sent: list[str] = []
        total = 0
        try:
            for entry in (
                self.db[OUTBOX].find(query).sort("created_at", ASCENDING).limit(RESEND_BATCH)
            ):
                self.publisher.send(entry["routing_key"], entry["envelope"])
                sent.append(entry["_id"])
                if len(sent) == DELETE_BATCH:
                    total += self._delete(sent)
        finally:
            total += self._delete(sent)
        return total

    def _delete(self, ids: list[str]) -> int:
        if ids:
            self.db[OUTBOX].delete_many({"_id": {"$in": ids}})
        deleted = len(ids)
        ids.clear()
        return deleted


def record_backlog(database: str, waiting: int, oldest: datetime | None, now: datetime) -> None:
    """An outbox's backlog for /metrics (`oldest`: when the oldest waiting entry was written)."""
    OUTBOX_BACKLOG.labels(database).set(waiting)
    age = (now - oldest).total_seconds() if oldest is not None else 0
    OUTBOX_OLDEST_AGE.labels(database).set(max(age, 0))


def _conflicted(exc: PyMongoError) -> bool:
    """A transaction that lost a race with another write (worth running again), not a
    server that cannot be reached (an outage: the caller answers 503)."""
    return exc.has_error_label("TransientTransactionError") and not isinstance(
        exc, ConnectionFailure
    )
