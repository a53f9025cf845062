"""A case's writes: the stored document a case becomes, a step committed with the events
announcing it, those events sent from memory, and the outbox timer's resending of what
was left unsent."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from pymongo.errors import DuplicateKeyError, PyMongoError

from gridwork_common.events import EventPublisher
from gridwork_common.outbox import RESEND_BATCH, Outbox, record_backlog
from services.events import topics
from services.events.domain import incident as loop
from services.events.usecases import case_rendering
from services.events.usecases.case_context import CaseContext

log = logging.getLogger(__name__)
OPEN_STATES = tuple(s for s in loop.STATES if s not in (loop.REJECTED, loop.EVALUATED, loop.CLOSED))


class MarksMoved(loop.StaleVersion):
    """The deadline timer marked the case (warned, overdue, escalated) between a step's
    read and its write: the step is decided again on what is stored, as its events say
    whether the case ever ran late."""


class CaseWrites:
    def __init__(
        self,
        context: CaseContext,
        forget_sent: Callable[[str, list[str]], None] | None = None,
    ):
        self.context = context
        # Takes (case id, ids of its confirmed events) to pull off the case: a replica's
        # batcher (sent_events.py), off the request path; else pulled at once. Called
        # when the broker confirms, which may be after the step has answered.
        self.forget_sent = forget_sent or self._forget_now

    def stored_document(self, incident: loop.Incident, catalogue_version, previous=None) -> dict:
        document = loop.to_document(incident)
        grid = incident.grid_code
        involved = set((previous or {}).get("departments_involved", []))
        if incident.department:
            involved.add(incident.department)
        document.update(
            _id=incident.incident_id,
            catalogue_version=catalogue_version,
            path=[grid[:6], grid[:9], grid[:12], grid],
            open=incident.state in OPEN_STATES,
            departments_involved=sorted(involved),
            merged_ids=(previous or {}).get("merged_ids", []),
            # deadline marks: the stage number each notice was last sent for
            warned_seq=(previous or {}).get("warned_seq", 0),
            overdue_seq=(previous or {}).get("overdue_seq", 0),
            auto_seq=(previous or {}).get("auto_seq", 0),
        )
        if (previous or {}).get("patrol_id"):
            document["patrol_id"] = previous["patrol_id"]
        if incident.location is not None:
            document["geo"] = {"type": "Point", "coordinates": list(incident.location)}
        return document

    def commit(self, before: Mapping | None, after: dict, change: loop.Change, key) -> None:
        """Write the new state with the command's idempotency record and the events to
        send, in one command (repository.py); then send the events from memory (a timer
        resends any left)."""
        outbox = [self.outbox_entry(after, name, change) for name in change.events]
        if before is None:
            self.context.cases.add(after, outbox)
        elif not self.context.cases.save_step(before, after, key, outbox):
            current, key_used = self.context.cases.version_of(before["_id"], key and key["_id"])
            if key_used:
                raise DuplicateKeyError("the command's key was used on this case")
            if current == before["version"]:
                raise MarksMoved(current, current)
            raise loop.StaleVersion(before["version"], current)
        self._send_step(after["_id"], outbox)

    def _send_step(self, case_id: str, outbox: list[dict]) -> None:
        """Send a step's events in order, without waiting for the broker: each leaves its
        case once the broker confirms it. One that cannot be sent stops the rest (a
        case's events stay in order): they wait in the case for the outbox timer, as do
        those the broker refuses or a lost connection leaves unconfirmed."""
        if self.context.events is None:
            return
        for entry in outbox:
            confirmed = functools.partial(self.forget_sent, case_id, [entry["_id"]])
            if not self.context.events.send_confirmed(
                entry["routing_key"], entry["envelope"], confirmed
            ):
                return

    def _forget_now(self, case_id: str, entry_ids: list[str]) -> None:
        try:
            self.context.cases.forget_sent([(case_id, entry_ids)])
        except PyMongoError:  # sent but kept: the timer sends them again (at least once)
            log.warning("sent events left in their case", exc_info=True)

    def outbox_entry(self, document: Mapping, name: str, change: loop.Change) -> dict:
        incident = change.incident
        full_key, envelope = self._publisher().envelope(
            f"incident.{name}",
            incident.grid_code,
            case_rendering.event_data(document, name, change, self.context.setup.calendar()),
            route=topics.route(incident.grid_code, incident.department),
            extensions={"department": incident.department or topics.NO_DEPARTMENT},
        )
        return {
            "_id": envelope["id"],
            "routing_key": full_key,
            "envelope": envelope,
            "created_at": self.context.clock(),
        }

    def _publisher(self) -> EventPublisher:
        if self.context.events is None:
            return EventPublisher(lambda key, payload: None, "/counties/000000/events")
        return self.context.events

    def flush_outbox(self, older_than_s: float = 0) -> int:
        """Send the events left unsent for `older_than_s`, in cases and in the shared
        outbox (deadline notices, an older release's). A send after a write that fails
        (the broker down) leaves the entries to this timer: the change stands and its
        caller gets its answer."""
        self.context.cases.drain_legacy_commands()
        outbox = Outbox(self.context.db, self.context.events, self.context.clock)
        if self.context.events is None:
            return 0
        sent = 0
        try:
            sent += outbox.resend(older_than_s)
            sent += self._resend_from_cases(outbox, older_than_s)
        finally:
            self._record_backlog(outbox)
        return sent

    def _resend_from_cases(self, outbox: Outbox, older_than_s: float) -> int:
        cutoff = self.context.clock() - timedelta(seconds=older_than_s)
        sent: list[tuple[str, list[str]]] = []
        try:
            for case in self.context.cases.with_unsent(cutoff, RESEND_BATCH):
                entries = sorted(case.get("outbox", []), key=lambda entry: entry["created_at"])
                due = [entry for entry in entries if entry["created_at"] < cutoff]
                ids = outbox.publish_entries(due)
                sent.append((case["_id"], ids))
                if len(ids) < len(due):
                    break  # the broker is down: the next run sends the rest
        finally:
            self.context.cases.forget_sent(sent)
        return sum(len(ids) for _, ids in sent)

    def _record_backlog(self, outbox: Outbox) -> None:
        try:
            waiting, oldest = outbox.backlog()
            in_cases, oldest_in_cases = self.context.cases.unsent_backlog()
        except PyMongoError:
            return  # mongod is down: the service's own health says so
        written = [moment for moment in (oldest, oldest_in_cases) if moment is not None]
        record_backlog(
            self.context.db.name,
            waiting + in_cases,
            min(written, default=None),
            self.context.clock(),
        )
