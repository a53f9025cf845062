"""The deadline timer's checks: warnings at 80 % of a stage, overdue notices when it
passes, and automatic escalation with supervision of cases long overdue."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import OperationFailure

from gridwork_common import roles
from gridwork_common.outbox import Outbox
from services.events import store
from services.events.domain import incident as loop
from services.events.repository import CASE_STATE
from services.events.usecases.case_context import CaseContext
from services.events.usecases.case_writes import CaseWrites

SYSTEM_ACTOR = loop.Actor(user_id="events-deadlines", roles=(roles.SYSTEM,))


class DeadlineChecks:
    def __init__(self, context: CaseContext, writes: CaseWrites):
        self.context = context
        self.writes = writes

    def check_deadlines(self) -> dict:
        """Warnings at 80 % of a stage, overdue notices when it passes, and automatic
        escalation with supervision once overdue by the policy's hours: each once per
        stage, decided by a conditional update, so several replicas may run this."""
        now = self.context.clock()
        sent = {"warning": 0, "overdue": 0, "escalated": 0}
        for field, stamp, name in (
            ("stage_warn_at", "warned_seq", "warning"),
            ("stage_due", "overdue_seq", "overdue"),
        ):
            due = self.context.db[store.INCIDENTS].find(
                {
                    "open": True,
                    "state": {"$ne": loop.SUSPENDED},
                    field: {"$lte": now},
                    "$expr": {"$lt": [f"${stamp}", "$stage_seq"]},
                },
                CASE_STATE,
            )
            for document in due:
                if self._mark_and_announce(document, stamp, name):
                    sent[name] += 1
        sent["escalated"] = self._escalate_long_overdue(now)
        return sent

    def _mark_and_announce(self, document: Mapping, stamp: str, name: str) -> bool:
        """Mark the stage as noticed and store the notice in one transaction: a failure
        between the two would leave the mark without its notice, and nobody told."""
        try:
            with self.context.db.client.start_session() as session, session.start_transaction():
                marked = self.context.db[store.INCIDENTS].find_one_and_update(
                    {
                        "_id": document["_id"],
                        "stage_seq": document["stage_seq"],
                        stamp: {"$lt": document["stage_seq"]},
                    },
                    {"$set": {stamp: document["stage_seq"]}},
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
                if marked is None:
                    return False  # another replica, or the case moved on
                incident = loop.from_document(marked)
                change = loop.Change(action=name, incident=incident, events=(name,))
                entry = self.writes.outbox_entry(marked, name, change)
                self.context.db[store.OUTBOX].insert_one(entry, session=session)
        except OperationFailure as exc:
            # Another replica marking the same case at once: it sends the notice.
            if exc.has_error_label("TransientTransactionError"):
                return False
            raise
        Outbox(self.context.db, self.context.events, self.context.clock).send_entries([entry])
        return True

    def _escalate_long_overdue(self, now: datetime) -> int:
        hours = self.context.setup.policy()["auto_escalate_after_hours"]
        escalated = 0
        candidates = self.context.db[store.INCIDENTS].find(
            {
                "open": True,
                "state": {"$ne": loop.SUSPENDED},
                "stage_due": {"$lte": now},
                "$expr": {"$lt": ["$auto_seq", "$stage_seq"]},
            },
            {"timeline": 0, "_id": 1},
        )
        for candidate in candidates:
            document = self.context.db[store.INCIDENTS].find_one(
                {"_id": candidate["_id"]}, CASE_STATE
            )
            rules = self.context.setup.rules(document.get("catalogue_version"))
            if rules.working_minutes_between(document["stage_due"], now) < hours * 60:
                continue
            if self._escalate_and_supervise(document, rules, now, hours):
                escalated += 1
        return escalated

    def _escalate_and_supervise(self, document: Mapping, rules, now: datetime, hours) -> bool:
        incident = loop.from_document(document)
        stage_seq = incident.stage_seq
        events: list[str] = []
        if "escalate" in loop.allowed_actions(incident, SYSTEM_ACTOR):
            change = loop.apply(
                incident,
                loop.Escalate(
                    expected_version=incident.version,
                    reason=f"overdue by more than {hours:g} working hours",
                ),
                SYSTEM_ACTOR,
                now,
                rules,
            )
            incident, events = change.incident, [*events, *change.events]
        if "supervise" in loop.allowed_actions(incident, SYSTEM_ACTOR):
            change = loop.apply(
                incident,
                loop.Supervise(
                    expected_version=incident.version,
                    note=f"automatic: overdue by more than {hours:g} working hours",
                ),
                SYSTEM_ACTOR,
                now,
                rules,
            )
            incident, events = change.incident, [*events, *change.events]
        new_document = self.writes.stored_document(
            incident, document.get("catalogue_version"), document
        )
        # The overdue stage is handled; an escalation starts a new stage that may itself
        # run late and climb again.
        new_document["auto_seq"] = stage_seq
        try:
            self.writes.commit(
                document,
                new_document,
                loop.Change(action="auto", incident=incident, events=tuple(events)),
                key=None,
            )
        except loop.StaleVersion:
            return False  # a person acted on it meanwhile, or another replica did this
        return bool(events)
