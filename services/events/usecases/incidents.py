"""The incident loop as the service runs it: reports located through the population
service, commands applied by the pure state machine, optimistic versions, idempotency
keys, an outbox so no accepted change loses its events, deadlines and queries."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from gridwork_common import roles
from gridwork_common.clock import utc_now
from gridwork_common.context import CallerContext
from gridwork_common.errors import Conflict, GridworkError, InvalidInput, NotFound
from gridwork_common.events import EventPublisher
from gridwork_common.outbox import RESEND_BATCH, Outbox, record_backlog
from gridwork_common.paging import MAX_PAGE
from services.events import store, topics
from services.events.domain import incident as loop
from services.events.domain.calendar import WorkingCalendar
from services.events.repository import WITHOUT_EMBEDDED, Cases
from services.events.usecases.setup import CountySetup

log = logging.getLogger(__name__)
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0c2a1e-7f5d-4c1e-9a43-6f0e1d2b3c4d")
REPORT_RACE_ATTEMPTS = 20
MARKS_RACE_ATTEMPTS = 4  # a stage gets at most three deadline marks
OPEN_STATES = tuple(s for s in loop.STATES if s not in (loop.REJECTED, loop.EVALUATED, loop.CLOSED))
CENTRE_QUEUE_STATES = (
    loop.REPORTED,
    loop.ACCEPTED,
    loop.REGISTERED,
    loop.RETURNED,
    loop.VERIFIED,
    loop.SUSPENDED,
)
COMMANDS: dict[str, type] = {
    command.action: command
    for command in (
        loop.Accept,
        loop.Reject,
        loop.Register,
        loop.Dispatch,
        loop.Sign,
        loop.Return,
        loop.Feedback,
        loop.Verify,
        loop.Close,
        loop.Evaluate,
        loop.Escalate,
        loop.RequestExtension,
        loop.DecideExtension,
        loop.Suspend,
        loop.Resume,
        loop.Supervise,
    )
}
WORKLISTS = ("my_grid", "verification", "centre_queue", "department_inbox", "overdue", "supervised")
RENDERED_FIELDS = tuple(
    field.name for field in dataclasses.fields(loop.Incident) if field.name != "timeline"
)
SYSTEM_ACTOR = loop.Actor(user_id="events-deadlines", roles=(roles.SYSTEM,))
NEARBY_FIELDS = dict.fromkeys(("state", "category", "grid_code", "reported_at", "description"), 1)


class IncidentDesk:
    def __init__(
        self,
        db: Database,
        setup: CountySetup,
        events: EventPublisher | None,
        locate: Callable[[float, float], str] | None,  # a point's grid code
        caller: CallerContext,
        clock: Callable[[], datetime] = utc_now,
        forget_sent: Callable[[str, list[str]], None] | None = None,
    ):
        self.db = db
        self.cases = Cases(db)
        self.setup = setup
        self.events = events
        self.locate = locate
        self.caller = caller
        self.clock = clock
        # Takes (case id, ids of its confirmed events) to pull off the case: a replica's
        # batcher (sent_events.py), off the request path; else pulled at once. Called
        # when the broker confirms, which may be after the step has answered.
        self.forget_sent = forget_sent or self._forget_now

    @property
    def actor(self) -> loop.Actor:
        return loop.Actor(
            user_id=self.caller.user_id or "anonymous",
            roles=tuple(self.caller.roles),
            scope=self.caller.scope,
            department=self.caller.department,
        )

    # ------------------------------------------------------------------ reporting
    def report(self, raw: Mapping, idempotency_key: str) -> dict:
        if not isinstance(raw, Mapping):
            raise InvalidInput("report", "must be an object")
        key = _idempotency_key(idempotency_key)
        # The id follows from who reported and their key: a retry finds the same case.
        incident_id = uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{self.actor.user_id}:{key}").hex
        fingerprint = _fingerprint(raw)
        # Optimistic, as for commands: a retry meets the stored case when it commits (or
        # when locating or checking fails, say the grids changed meanwhile).
        try:
            return self._report(raw, incident_id, fingerprint)
        except GridworkError:
            existing = self.db[store.INCIDENTS].find_one({"_id": incident_id}, WITHOUT_EMBEDDED)
            if existing is None:
                raise
            return self._replayed_report(existing, fingerprint)

    def _report(self, raw: Mapping, incident_id: str, fingerprint: str) -> dict:
        location = _location(raw.get("location"))
        grid_code = self._grid_of(location, raw.get("grid_code"))
        rules = self.setup.rules()
        command = loop.Report(
            incident_id=incident_id,
            category=str(raw.get("category") or ""),
            urgency=str(raw.get("urgency") or "normal"),
            grid_code=grid_code,
            description=str(raw.get("description") or ""),
            media_ids=tuple(_strings(raw.get("media_ids"), "media_ids")),
            location=location,
            reporter_id=raw.get("reporter_id"),
            resolved_on_spot=bool(raw.get("resolved_on_spot", False)),
        )
        rules.catalogue.entry(command.category)  # only catalogued items, named clearly
        change = loop.report(command, self.actor, self.clock(), rules)
        document = self._document(change.incident, rules.catalogue.version)
        document["report_fingerprint"] = fingerprint
        patrol_id = _patrol_id(raw.get("patrol_id"))
        if patrol_id is not None:  # reported during a patrol (the population service's)
            document["patrol_id"] = patrol_id
        for _ in range(REPORT_RACE_ATTEMPTS):
            try:
                self._commit(None, document, change, key=None)
                return self._report_result(document, change.incident)
            except DuplicateKeyError:  # the same report, retried concurrently
                existing = self.db[store.INCIDENTS].find_one({"_id": incident_id}, WITHOUT_EMBEDDED)
                if existing is not None:
                    return self._replayed_report(existing, fingerprint)
                time.sleep(0.05)  # the other attempt's case is not readable yet
        raise Conflict("idempotency_key: the same report is being stored; retry")

    def _replayed_report(self, existing: Mapping, fingerprint: str) -> dict:
        if existing.get("report_fingerprint", fingerprint) != fingerprint:
            raise Conflict("idempotency_key: already used for a different report")
        return self._report_result(existing)

    def _report_result(self, document: Mapping, incident: loop.Incident | None = None) -> dict:
        return {
            "incident": self._render(document, incident=incident),
            "possible_duplicates": self._nearby(document),
        }

    def _grid_of(self, location: tuple[float, float] | None, given: object) -> str:
        if location is not None:
            if self.locate is None:
                raise InvalidInput("location", "cannot be resolved here")
            return self.locate(*location)
        scope = self.caller.scope or ""
        if len(scope) == loop.GRID_LENGTH:
            return scope  # a grid worker's report without GPS: their own grid
        if isinstance(given, str) and self.caller.has_role(
            roles.CENTRE_OPERATOR, roles.ADMIN, roles.SYSTEM
        ):
            return given  # a centre recording a phoned-in report for a known grid
        raise InvalidInput("location", "is required: a GPS point [longitude, latitude]")

    # ------------------------------------------------------------------ acting
    def act(
        self,
        incident_id: str,
        action: str,
        expected_version: int,
        idempotency_key: str,
        fields: Mapping | None = None,
    ) -> dict:
        key = _idempotency_key(idempotency_key)
        command_id = f"{self.actor.user_id}:{key}"
        fingerprint = _fingerprint({"version": expected_version, "fields": fields or {}})
        # Optimistic: a retry of a done command is found by the failure it meets (its
        # version is stale, or its key is already used), so a first attempt costs no
        # look-up of the record.
        try:
            for _ in range(MARKS_RACE_ATTEMPTS - 1):
                try:
                    return self._act(
                        incident_id, action, expected_version, fields, command_id, fingerprint
                    )
                except MarksMoved:  # the deadline timer marked the case meanwhile: again
                    continue
            return self._act(incident_id, action, expected_version, fields, command_id, fingerprint)
        except DuplicateKeyError:  # the key was already used (on this case or another)
            done = self.cases.command(command_id)
            if done is None:
                raise Conflict("idempotency_key: already used for a different command") from None
        except GridworkError:
            done = self.cases.command(command_id)
            if done is None:
                raise
        return self._replay(done, incident_id, action, fingerprint)

    def _act(
        self,
        incident_id: str,
        action: str,
        expected_version: int,
        fields: Mapping | None,
        command_id: str,
        fingerprint: str,
    ) -> dict:
        if action not in COMMANDS:
            raise InvalidInput("action", f"must be one of {', '.join(COMMANDS)}")
        document = self._visible(incident_id)
        incident = loop.from_document(document)
        command = _command(COMMANDS[action], expected_version, fields or {})
        duplicate_of = getattr(command, "duplicate_of", None)
        if duplicate_of is not None:
            if duplicate_of == incident_id:
                raise InvalidInput("duplicate_of", "a case cannot duplicate itself")
            try:
                self._visible(duplicate_of)
            except NotFound:
                raise InvalidInput("duplicate_of", f"no incident {duplicate_of}") from None
        rules = self.setup.rules(document.get("catalogue_version"))
        change = loop.apply(incident, command, self.actor, self.clock(), rules)
        new_document = self._document(change.incident, document.get("catalogue_version"), document)
        record = {  # kept in the case: its id is the case's
            "_id": command_id,
            "action": action,
            "version": change.incident.version,
            "fingerprint": fingerprint,
            "at": self.clock(),
        }
        self._commit(document, new_document, change, key=record)
        return self._render(new_document, incident=change.incident)

    def _replay(self, done: Mapping, incident_id: str, action: str, fingerprint: str) -> dict:
        if (
            done["incident_id"] != incident_id
            or done["action"] != action
            or done.get("fingerprint", fingerprint) != fingerprint
        ):
            raise Conflict("idempotency_key: already used for a different command")
        document = self._visible(incident_id)
        return self._render(document, as_of_version=done["version"])

    def merge(
        self, incident_id: str, duplicate_id: str, expected_version: int, idempotency_key: str
    ) -> dict:
        """A centre merges a duplicate report into an open case: the duplicate is rejected
        as a duplicate of it, and the case lists what was merged into it."""
        if incident_id == duplicate_id:
            raise InvalidInput("duplicate_id", "cannot merge a case into itself")
        primary = self._visible(incident_id)
        if primary["state"] not in OPEN_STATES:
            raise Conflict(f"incident_id: the case is {primary['state']}")
        merged = self.act(
            duplicate_id,
            "reject",
            expected_version,
            idempotency_key,
            {"reason": "duplicate", "duplicate_of": incident_id},
        )
        self.db[store.INCIDENTS].update_one(
            {"_id": incident_id}, {"$addToSet": {"merged_ids": duplicate_id}}
        )
        return {"incident": self._render(self._visible(incident_id)), "merged": merged}

    # ------------------------------------------------------------------ persistence
    def _document(self, incident: loop.Incident, catalogue_version, previous=None) -> dict:
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

    def _commit(self, before: Mapping | None, after: dict, change: loop.Change, key) -> None:
        """Write the new state with the command's idempotency record and the events to
        send, in one command (repository.py); then send the events from memory (a timer
        resends any left)."""
        outbox = [self._outbox_entry(after, name, change) for name in change.events]
        if before is None:
            self.cases.add(after, outbox)
        elif not self.cases.save_step(before, after, key, outbox):
            current, key_used = self.cases.version_of(before["_id"], key and key["_id"])
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
        if self.events is None:
            return
        for entry in outbox:
            confirmed = functools.partial(self.forget_sent, case_id, [entry["_id"]])
            if not self.events.send_confirmed(entry["routing_key"], entry["envelope"], confirmed):
                return

    def _forget_now(self, case_id: str, entry_ids: list[str]) -> None:
        try:
            self.cases.forget_sent([(case_id, entry_ids)])
        except PyMongoError:  # sent but kept: the timer sends them again (at least once)
            log.warning("sent events left in their case", exc_info=True)

    def _outbox_entry(self, document: Mapping, name: str, change: loop.Change) -> dict:
        incident = change.incident
        full_key, envelope = self._publisher().envelope(
            f"incident.{name}",
            incident.grid_code,
            _event_data(document, name, change, self.setup.calendar()),
            route=topics.route(incident.grid_code, incident.department),
            extensions={"department": incident.department or topics.NO_DEPARTMENT},
        )
        return {
            "_id": envelope["id"],
            "routing_key": full_key,
            "envelope": envelope,
            "created_at": self.clock(),
        }

    def _publisher(self) -> EventPublisher:
        if self.events is None:
            return EventPublisher(lambda key, payload: None, "/counties/000000/events")
        return self.events

    def flush_outbox(self, older_than_s: float = 0) -> int:
        """Send the events left unsent for `older_than_s`, in cases and in the shared
        outbox (deadline notices, an older release's). A send after a write that fails
        (the broker down) leaves the entries to this timer: the change stands and its
        caller gets its answer."""
        self.cases.drain_legacy_commands()
        outbox = Outbox(self.db, self.events, self.clock)
        if self.events is None:
            return 0
        sent = 0
        try:
            sent += outbox.resend(older_than_s)
            sent += self._resend_from_cases(outbox, older_than_s)
        finally:
            self._record_backlog(outbox)
        return sent

    def _resend_from_cases(self, outbox: Outbox, older_than_s: float) -> int:
        cutoff = self.clock() - timedelta(seconds=older_than_s)
        sent: list[tuple[str, list[str]]] = []
        try:
            for case in self.cases.with_unsent(cutoff, RESEND_BATCH):
                entries = sorted(case.get("outbox", []), key=lambda entry: entry["created_at"])
                due = [entry for entry in entries if entry["created_at"] < cutoff]
                ids = outbox.publish_entries(due)
                sent.append((case["_id"], ids))
                if len(ids) < len(due):
                    break  # the broker is down: the next run sends the rest
        finally:
            self.cases.forget_sent(sent)
        return sum(len(ids) for _, ids in sent)

    def _record_backlog(self, outbox: Outbox) -> None:
        try:
            waiting, oldest = outbox.backlog()
            in_cases, oldest_in_cases = self.cases.unsent_backlog()
        except PyMongoError:
            return  # mongod is down: the service's own health says so
        written = [moment for moment in (oldest, oldest_in_cases) if moment is not None]
        record_backlog(self.db.name, waiting + in_cases, min(written, default=None), self.clock())

    # ------------------------------------------------------------------ reading
    def _visible(self, incident_id: str) -> dict:
        if not isinstance(incident_id, str):
            raise InvalidInput("incident_id", "must be a string")
        document = self.db[store.INCIDENTS].find_one({"_id": incident_id}, WITHOUT_EMBEDDED)
        if document is None or not self._sees(document):
            raise NotFound(f"no incident {incident_id}")
        return document

    def _sees(self, document: Mapping) -> bool:
        if self.caller.has_role(roles.SYSTEM):
            return True
        if self.caller.department and self.caller.department in document.get(
            "departments_involved", []
        ):
            return True
        if self.caller.has_role(roles.DEPARTMENT_HANDLER) and not self.caller.has_role(
            roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.LEADER, roles.ADMIN
        ):
            return False
        return loop.contains(self.caller.scope, document["grid_code"])

    def _scope_query(self) -> dict:
        if self.caller.has_role(roles.SYSTEM):
            return {}
        clauses = []
        if self.caller.department:
            clauses.append({"departments_involved": self.caller.department})
        if self.caller.scope and self.caller.has_role(
            roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.LEADER, roles.ADMIN
        ):
            clauses.append({"path": self.caller.scope})
        return {"$or": clauses} if clauses else {"_id": {"$in": []}}

    def get(self, incident_id: str) -> dict:
        return self._render(self._visible(incident_id))

    def timeline(self, incident_id: str) -> list[dict]:
        return _render_timeline(self._visible(incident_id)["timeline"])

    def _render(
        self,
        document: Mapping,
        as_of_version: int | None = None,
        incident: loop.Incident | None = None,  # the document's, when the caller has it
    ) -> dict:
        if incident is None:
            incident = loop.from_document(document)
        # The case's fields but its timeline (a call of its own), without turning the
        # whole timeline into plain values to drop it.
        rendered = {name: _plain_json(getattr(incident, name)) for name in RENDERED_FIELDS}
        rendered.update(
            id=incident.incident_id,
            allowed_actions=loop.allowed_actions(incident, self.actor),
            escalated=incident.escalated,
            supervised=incident.supervised,
            overdue=document.get("overdue_seq", 0) == incident.stage_seq
            and incident.stage is not None,
            merged_ids=document.get("merged_ids", []),
        )
        if document.get("patrol_id"):
            rendered["patrol_id"] = document["patrol_id"]
        if as_of_version is not None:
            rendered["replayed_version"] = as_of_version
        return rendered

    def possible_duplicates(self, incident_id: str) -> list[dict]:
        """Open cases of the same category near this one, reported within the window."""
        document = self.db[store.INCIDENTS].find_one({"_id": incident_id})
        return [] if document is None else self._nearby(document)

    def _nearby(self, document: Mapping) -> list[dict]:
        if "geo" not in document:
            return []
        incident_id = document["_id"]
        policy = self.setup.policy()
        since = document["reported_at"] - timedelta(hours=policy["duplicate_window_hours"])
        nearby = (
            self.db[store.INCIDENTS]
            .find(
                {
                    "_id": {"$ne": incident_id},
                    "category": document["category"],
                    "open": True,
                    "reported_at": {"$gte": since},
                    "geo": {
                        "$nearSphere": {
                            "$geometry": document["geo"],
                            "$maxDistance": policy["duplicate_radius_m"],
                        }
                    },
                    **self._scope_query(),
                },
                NEARBY_FIELDS,  # only what is shown: not the case's events and records
            )
            .limit(10)
        )
        return [
            {
                "id": row["_id"],
                "state": row["state"],
                "category": row["category"],
                "grid_code": row["grid_code"],
                "reported_at": _json(row["reported_at"]),
                "description": row.get("description", ""),
            }
            for row in nearby
        ]

    def worklist(self, kind: str, cursor: str | None = None, limit: int = 50) -> dict:
        caller = self.caller
        queries = {
            "my_grid": {"path": caller.scope, "open": True},
            "verification": {"path": caller.scope, "state": loop.AWAITING_VERIFICATION},
            "centre_queue": {"owning_centre": caller.scope, "state": {"$in": CENTRE_QUEUE_STATES}},
            "department_inbox": {
                "department": caller.department,
                "state": {"$in": [loop.DISPATCHED, loop.HANDLING]},
            },
            "overdue": {"open": True, "$expr": {"$eq": ["$overdue_seq", "$stage_seq"]}},
            "supervised": {"open": True, "supervision_count": {"$gt": 0}},
        }
        if kind not in queries:
            raise InvalidInput("kind", f"must be one of {', '.join(WORKLISTS)}")
        return self._page(queries[kind], cursor, limit)

    def search(
        self, filters: Mapping | None = None, cursor: str | None = None, limit: int = 50
    ) -> dict:
        filters = dict(filters or {})
        query: dict = {}
        if "ids" in filters:  # e.g. the Open311 requests of a page, in one call
            ids = filters.pop("ids")
            if not isinstance(ids, list) or len(ids) > MAX_PAGE:
                raise InvalidInput("ids", f"must be a list of at most {MAX_PAGE} incident ids")
            query["_id"] = {"$in": [str(incident_id) for incident_id in ids]}
        if "state" in filters:
            if filters["state"] not in loop.STATES:
                raise InvalidInput("state", f"must be one of {', '.join(loop.STATES)}")
            query["state"] = filters.pop("state")
        if "category" in filters:
            query["category"] = str(filters.pop("category"))
        if "territory" in filters:
            query["path"] = str(filters.pop("territory"))
        if "overdue" in filters:
            overdue = filters.pop("overdue")
            query["$expr"] = {("$eq" if overdue else "$ne"): ["$overdue_seq", "$stage_seq"]}
            query["open"] = True
        query.update(_queue_filters(filters))
        window = {}
        for name, operator in (("reported_from", "$gte"), ("reported_to", "$lt")):
            if name in filters:
                window[operator] = _aware_time(filters.pop(name), name)
        if window:
            query["reported_at"] = window
        if filters:
            raise InvalidInput(sorted(filters)[0], "is not a filter")
        return self._page(query, cursor, limit)

    def _page(self, query: dict, cursor: str | None, limit: int) -> dict:
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be an integer from 1 to {MAX_PAGE}")
        clauses = [query, self._scope_query()]
        if cursor:
            clauses.append({"_id": {"$gt": cursor}})
        rows = list(self.db[store.INCIDENTS].find({"$and": clauses}).sort("_id", 1).limit(limit))
        return {
            "items": [self._render(row) for row in rows],
            "next_cursor": rows[-1]["_id"] if len(rows) == limit else None,
        }

    def counts(self, territory_code: str) -> dict:
        """Cases per state under a territory node (within the caller's scope)."""
        rows = self.db[store.INCIDENTS].aggregate(
            [
                {"$match": {"$and": [{"path": territory_code}, self._scope_query()]}},
                {"$group": {"_id": "$state", "count": {"$sum": 1}}},
            ]
        )
        by_state = {row["_id"]: row["count"] for row in rows}
        return {"territory": territory_code, "by_state": by_state, "total": sum(by_state.values())}

    # ------------------------------------------------------------------ deadlines
    def check_deadlines(self) -> dict:
        """Warnings at 80 % of a stage, overdue notices when it passes, and automatic
        escalation with supervision once overdue by the policy's hours: each once per
        stage, decided by a conditional update, so several replicas may run this."""
        now = self.clock()
        sent = {"warning": 0, "overdue": 0, "escalated": 0}
        for field, stamp, name in (
            ("stage_warn_at", "warned_seq", "warning"),
            ("stage_due", "overdue_seq", "overdue"),
        ):
            due = self.db[store.INCIDENTS].find(
                {
                    "open": True,
                    "state": {"$ne": loop.SUSPENDED},
                    field: {"$lte": now},
                    "$expr": {"$lt": [f"${stamp}", "$stage_seq"]},
                },
                {"timeline": 0, **WITHOUT_EMBEDDED},
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
            with self.db.client.start_session() as session, session.start_transaction():
                marked = self.db[store.INCIDENTS].find_one_and_update(
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
                entry = self._outbox_entry(marked, name, change)
                self.db[store.OUTBOX].insert_one(entry, session=session)
        except OperationFailure as exc:
            # Another replica marking the same case at once: it sends the notice.
            if exc.has_error_label("TransientTransactionError"):
                return False
            raise
        Outbox(self.db, self.events, self.clock).send_entries([entry])
        return True

    def _escalate_long_overdue(self, now: datetime) -> int:
        hours = self.setup.policy()["auto_escalate_after_hours"]
        escalated = 0
        candidates = self.db[store.INCIDENTS].find(
            {
                "open": True,
                "state": {"$ne": loop.SUSPENDED},
                "stage_due": {"$lte": now},
                "$expr": {"$lt": ["$auto_seq", "$stage_seq"]},
            },
            {"timeline": 0, "_id": 1},
        )
        for candidate in candidates:
            document = self.db[store.INCIDENTS].find_one(
                {"_id": candidate["_id"]}, WITHOUT_EMBEDDED
            )
            rules = self.setup.rules(document.get("catalogue_version"))
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
        new_document = self._document(incident, document.get("catalogue_version"), document)
        # The overdue stage is handled; an escalation starts a new stage that may itself
        # run late and climb again.
        new_document["auto_seq"] = stage_seq
        try:
            self._commit(
                document,
                new_document,
                loop.Change(action="auto", incident=incident, events=tuple(events)),
                key=None,
            )
        except loop.StaleVersion:
            return False  # a person acted on it meanwhile, or another replica did this
        return bool(events)


class MarksMoved(loop.StaleVersion):
    """The deadline timer marked the case (warned, overdue, escalated) between a step's
    read and its write: the step is decided again on what is stored, as its events say
    whether the case ever ran late."""


def _event_data(
    document: Mapping, name: str, change: loop.Change, calendar: WorkingCalendar
) -> dict:
    incident = change.incident
    entry = incident.timeline[-1] if incident.timeline else None
    data = {
        "incident_id": incident.incident_id,
        "event": name,
        "state": incident.state,
        "version": incident.version,
        "category": incident.category,
        "urgency": incident.urgency,
        "grid_code": incident.grid_code,
        "owning_centre": incident.owning_centre,
        "department": incident.department,
        "reporter_id": incident.reporter_id,
        "reported_at": _json(incident.reported_at),
        "stage": incident.stage,
        "stage_due": _json(incident.stage_due),
        "rework_count": incident.rework_count,
        "escalation_path": list(incident.escalation_path),
        "supervised": incident.supervised,
        # the person who acted: none for deadline notices and the timer's automatic steps
        "actor_id": entry.actor_id
        if entry and name not in topics.DEADLINES and roles.SYSTEM not in entry.actor_roles
        else None,
        "at": _json(entry.at if entry else incident.reported_at),
    }
    if name in ("reported", "dispatched"):
        data.update(
            description=incident.description,
            media_ids=list(incident.media_ids),
            location=list(incident.location) if incident.location else None,
        )
    if name == "reported":
        data["patrol_id"] = document.get("patrol_id")
    if name in ("handled", "verified", "reworked", "closed"):
        data["media_ids"] = list(entry.media_ids) if entry else []
    if name == "closed":
        data["closed_at"] = _json(incident.closed_at)
        data["resolved_on_spot"] = incident.resolved_on_spot
        # The whole case's record, whenever it happened: the assessment counts a closure
        # on time only if no stage ever ran over, and sets deferred cases apart.
        data["ever_overdue"] = document.get("overdue_seq", 0) > 0
        data["approved_extensions"] = incident.approved_extensions
        # Measured here, where the county's calendar is kept; the assessment service
        # averages it and takes its 90th percentile.
        data["handling_working_minutes"] = round(
            calendar.working_minutes_between(incident.reported_at, incident.closed_at)
        )
    if name == "evaluated":
        data["satisfaction"] = incident.satisfaction
    if name == "extended" and entry is not None:
        data["hours"] = entry.details.get("hours")
    return data


def _patrol_id(value) -> str | None:
    """A patrol's id as the phone made it (a UUID), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidInput("patrol_id", "must be a patrol's UUID")


def _command(command_type: type, expected_version, fields: Mapping):
    if not isinstance(fields, Mapping):
        raise InvalidInput("fields", "must be an object")
    allowed = {f.name for f in dataclasses.fields(command_type)} - {"expected_version"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], f"is not a field of {command_type.action}")
    values = dict(fields)
    if "new_due" in values and values["new_due"] is not None:
        values["new_due"] = _aware_time(values["new_due"], "new_due")
    if "media_ids" in values:
        values["media_ids"] = tuple(_strings(values["media_ids"], "media_ids"))
    try:
        return command_type(expected_version=expected_version, **values)
    except TypeError as exc:  # a required field missing
        missing = next(
            (
                f.name
                for f in dataclasses.fields(command_type)
                if f.name not in values
                and f.name != "expected_version"
                and f.default is dataclasses.MISSING
            ),
            "fields",
        )
        raise InvalidInput(missing, f"is required ({exc})") from None


def _queue_filters(filters: dict) -> dict:
    """The filters a command-centre queue adds to a search (popped from `filters`): open
    cases only, urgency, escalated or supervised ones, the centre owning them, the
    department holding them. They narrow the caller's scope, never widen it."""
    query: dict = {}
    if "urgency" in filters:
        urgency = filters.pop("urgency")
        if urgency not in loop.URGENCIES:
            raise InvalidInput("urgency", f"must be one of {', '.join(loop.URGENCIES)}")
        query["urgency"] = urgency
    if "open" in filters:
        query["open"] = _flag(filters.pop("open"), "open")
    for name, counter in (("escalated", "escalation_count"), ("supervised", "supervision_count")):
        if name in filters:
            query[counter] = {"$gt": 0} if _flag(filters.pop(name), name) else 0
    for name in ("owning_centre", "department"):
        if name in filters:
            value = filters.pop(name)
            if not isinstance(value, str) or not value:
                raise InvalidInput(name, "must be a code")
            query[name] = value
    return query


def _flag(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, "must be true or false")
    return value


def _fingerprint(raw: Mapping) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _idempotency_key(value) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 100:
        raise InvalidInput("idempotency_key", "is required: 1 to 100 characters")
    return value


def _location(value) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and value.get("type") == "Point":
        value = value.get("coordinates")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise InvalidInput("location", "must be [longitude, latitude]")
    lon, lat = value
    for name, number, bound in (("longitude", lon, 180), ("latitude", lat, 90)):
        if isinstance(number, bool) or not isinstance(number, int | float) or abs(number) > bound:
            raise InvalidInput("location", f"{name} must be a number from -{bound} to {bound}")
    return float(lon), float(lat)


def _strings(value, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(field, "must be a list of strings")
    return list(value)


def _aware_time(value, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidInput(field, "must be an ISO 8601 time with a UTC offset") from None
    if moment.tzinfo is None:
        raise InvalidInput(field, "must be an ISO 8601 time with a UTC offset")
    return moment.astimezone(UTC)


def _json(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _plain_json(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return _json(value)


def _render_timeline(entries) -> list[dict]:
    return [_json(dict(entry)) for entry in entries]
