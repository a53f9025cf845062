"""The incident loop as the service runs it: reports located through the population
service, commands applied by the pure state machine, optimistic versions, idempotency
keys, and merges. The desk composes its collaborators, which share one CaseContext:
CaseWrites (case_writes.py: stored documents, commits, the outbox), CaseReads
(case_reads.py: scope, rendering, worklists, search, counts) and DeadlineChecks
(deadline_checks.py); input parsing is in case_input.py, rendering in case_rendering.py."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common import roles
from gridwork_common.clock import utc_now
from gridwork_common.context import CallerContext
from gridwork_common.errors import Conflict, GridworkError, InvalidInput, NotFound
from gridwork_common.events import EventPublisher
from gridwork_common.meanwhile import InBackground
from services.events import store
from services.events.domain import incident as loop
from services.events.repository import WITHOUT_EMBEDDED, Cases
from services.events.usecases import case_input
from services.events.usecases.case_context import CaseContext
from services.events.usecases.case_reads import CaseReads
from services.events.usecases.case_writes import OPEN_STATES, CaseWrites, MarksMoved
from services.events.usecases.deadline_checks import DeadlineChecks
from services.events.usecases.setup import CountySetup

IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0c2a1e-7f5d-4c1e-9a43-6f0e1d2b3c4d")
REPORT_RACE_ATTEMPTS = 20
MARKS_RACE_ATTEMPTS = 4  # a stage gets at most three deadline marks
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
        observe_stage: Callable[[str, float], None] | None = None,
    ):
        self.context = CaseContext(db, Cases(db), setup, events, caller, clock)
        self.locate = locate
        # (stage, seconds): where a report's time goes (the service's metrics)
        self.observe_stage = observe_stage or (lambda stage, seconds: None)
        self.reads = CaseReads(self.context)
        # forget_sent: see CaseWrites (a replica's batcher, else pulled at once)
        self.writes = CaseWrites(self.context, forget_sent)
        self.deadlines = DeadlineChecks(self.context, self.writes)

    @property
    def actor(self) -> loop.Actor:
        return self.context.actor

    # ------------------------------------------------------------------ reporting
    def report(self, raw: Mapping, idempotency_key: str, duplicates: bool = True) -> dict:
        """Store a report (or find it again, for a retry under its key): the case and,
        if `duplicates`, the open cases of its kind nearby (not searched otherwise: a
        client that shows none asks for the case alone)."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("report", "must be an object")
        key = case_input.idempotency_key(idempotency_key)
        # The id follows from who reported and their key: a retry finds the same case.
        incident_id = uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{self.actor.user_id}:{key}").hex
        fingerprint = case_input.fingerprint(raw)
        # Optimistic, as for commands: a retry meets the stored case when it commits (or
        # when locating or checking fails, say the grids changed meanwhile).
        with self._stage("report"):  # the whole use case, its stages below
            try:
                return self._report(raw, incident_id, fingerprint, duplicates)
            except GridworkError:
                existing = self.context.db[store.INCIDENTS].find_one(
                    {"_id": incident_id}, WITHOUT_EMBEDDED
                )
                if existing is None:
                    raise
                return self._replayed_report(existing, fingerprint, duplicates)

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Time the block as one stage of a report (wall clock: waits count)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe_stage(name, time.perf_counter() - started)

    def _report(self, raw: Mapping, incident_id: str, fingerprint: str, duplicates: bool) -> dict:
        with self._stage("locate"):
            location = case_input.location(raw.get("location"))
            grid_code = self._grid_of(location, raw.get("grid_code"))
        with self._stage("decide"):
            document, change = self._new_case(raw, incident_id, location, grid_code)
        document["report_fingerprint"] = fingerprint
        nearby = self._nearby_meanwhile(document) if duplicates else None
        for _ in range(REPORT_RACE_ATTEMPTS):
            try:
                with self._stage("store"):  # the insert, then the events handed to the broker
                    self.writes.commit(None, document, change, key=None)
                return self._report_result(document, change.incident, nearby)
            except DuplicateKeyError:  # the same report, retried concurrently
                existing = self.context.db[store.INCIDENTS].find_one(
                    {"_id": incident_id}, WITHOUT_EMBEDDED
                )
                if existing is not None:
                    return self._replayed_report(existing, fingerprint, duplicates)
                time.sleep(0.05)  # the other attempt's case is not readable yet
        raise Conflict("idempotency_key: the same report is being stored; retry")

    def _new_case(
        self, raw: Mapping, incident_id: str, location: tuple[float, float] | None, grid_code: str
    ) -> tuple[dict, loop.Change]:
        rules = self.context.setup.rules()
        command = loop.Report(
            incident_id=incident_id,
            category=str(raw.get("category") or ""),
            urgency=str(raw.get("urgency") or "normal"),
            grid_code=grid_code,
            description=str(raw.get("description") or ""),
            media_ids=tuple(case_input.strings(raw.get("media_ids"), "media_ids")),
            location=location,
            reporter_id=raw.get("reporter_id"),
            resolved_on_spot=bool(raw.get("resolved_on_spot", False)),
        )
        rules.catalogue.entry(command.category)  # only catalogued items, named clearly
        change = loop.report(command, self.actor, self.context.clock(), rules)
        document = self.writes.stored_document(change.incident, rules.catalogue.version)
        patrol_id = case_input.patrol_id(raw.get("patrol_id"))
        if patrol_id is not None:  # reported during a patrol (the population service's)
            document["patrol_id"] = patrol_id
        return document, change

    def _replayed_report(self, existing: Mapping, fingerprint: str, duplicates: bool) -> dict:
        if existing.get("report_fingerprint", fingerprint) != fingerprint:
            raise Conflict("idempotency_key: already used for a different report")
        nearby = (lambda: self._nearby(existing)) if duplicates else None
        return self._report_result(existing, nearby=nearby)

    def _report_result(
        self,
        document: Mapping,
        incident: loop.Incident | None = None,
        nearby: Callable[[], list[dict]] | None = None,  # the duplicates, or none asked for
    ) -> dict:
        with self._stage("render"):
            rendered = self.reads.render(document, incident=incident)
        if nearby is None:
            return {"incident": rendered}
        with self._stage("duplicates_awaited"):  # what the answer still waits for them
            return {"incident": rendered, "possible_duplicates": nearby()}

    def _nearby_meanwhile(self, document: Mapping) -> Callable[[], list[dict]]:
        """The duplicates nearby leave the new case out, so they are looked up beside its
        insert (the two waits on mongod overlap); the result, when asked for."""
        spawned = time.perf_counter()

        def search() -> list[dict]:
            # how long the search waited for the hub before it started
            self.observe_stage("duplicates_queued", time.perf_counter() - spawned)
            return self._nearby(document)

        return InBackground(search).result

    def _nearby(self, document: Mapping) -> list[dict]:
        with self._stage("duplicates"):
            return self.reads.nearby(document)

    def _grid_of(self, location: tuple[float, float] | None, given: object) -> str:
        if location is not None:
            if self.locate is None:
                raise InvalidInput("location", "cannot be resolved here")
            return self.locate(*location)
        scope = self.context.caller.scope or ""
        if len(scope) == loop.GRID_LENGTH:
            return scope  # a grid worker's report without GPS: their own grid
        if isinstance(given, str) and self.context.caller.has_role(
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
        key = case_input.idempotency_key(idempotency_key)
        command_id = f"{self.actor.user_id}:{key}"
        fingerprint = case_input.fingerprint({"version": expected_version, "fields": fields or {}})
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
            done = self.context.cases.command(command_id)
            if done is None:
                raise Conflict("idempotency_key: already used for a different command") from None
        except GridworkError:
            done = self.context.cases.command(command_id)
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
        document = self.reads.visible(incident_id)
        incident = loop.from_document(document)
        command = case_input.command(COMMANDS[action], expected_version, fields or {})
        duplicate_of = getattr(command, "duplicate_of", None)
        if duplicate_of is not None:
            if duplicate_of == incident_id:
                raise InvalidInput("duplicate_of", "a case cannot duplicate itself")
            try:
                self.reads.visible(duplicate_of)
            except NotFound:
                raise InvalidInput("duplicate_of", f"no incident {duplicate_of}") from None
        rules = self.context.setup.rules(document.get("catalogue_version"))
        change = loop.apply(incident, command, self.actor, self.context.clock(), rules)
        new_document = self.writes.stored_document(
            change.incident, document.get("catalogue_version"), document
        )
        record = {  # kept in the case: its id is the case's
            "_id": command_id,
            "action": action,
            "version": change.incident.version,
            "fingerprint": fingerprint,
            "at": self.context.clock(),
        }
        self.writes.commit(document, new_document, change, key=record)
        return self.reads.render(new_document, incident=change.incident)

    def _replay(self, done: Mapping, incident_id: str, action: str, fingerprint: str) -> dict:
        if (
            done["incident_id"] != incident_id
            or done["action"] != action
            or done.get("fingerprint", fingerprint) != fingerprint
        ):
            raise Conflict("idempotency_key: already used for a different command")
        document = self.reads.visible(incident_id)
        return self.reads.render(document, as_of_version=done["version"])

    def merge(
        self, incident_id: str, duplicate_id: str, expected_version: int, idempotency_key: str
    ) -> dict:
        """A centre merges a duplicate report into an open case: the duplicate is rejected
        as a duplicate of it, and the case lists what was merged into it."""
        if incident_id == duplicate_id:
            raise InvalidInput("duplicate_id", "cannot merge a case into itself")
        primary = self.reads.visible(incident_id)
        if primary["state"] not in OPEN_STATES:
            raise Conflict(f"incident_id: the case is {primary['state']}")
        merged = self.act(
            duplicate_id,
            "reject",
            expected_version,
            idempotency_key,
            {"reason": "duplicate", "duplicate_of": incident_id},
        )
        self.context.db[store.INCIDENTS].update_one(
            {"_id": incident_id}, {"$addToSet": {"merged_ids": duplicate_id}}
        )
        return {"incident": self.reads.render(self.reads.visible(incident_id)), "merged": merged}

    # ------------------------------------------------------------------ handed on
    def flush_outbox(self, older_than_s: float = 0) -> int:
        return self.writes.flush_outbox(older_than_s)

    def get(self, incident_id: str) -> dict:
        return self.reads.get(incident_id)

    def timeline(self, incident_id: str) -> list[dict]:
        return self.reads.timeline(incident_id)

    def possible_duplicates(self, incident_id: str) -> list[dict]:
        return self.reads.possible_duplicates(incident_id)

    def worklist(self, kind: str, cursor: str | None = None, limit: int = 50) -> dict:
        return self.reads.worklist(kind, cursor, limit)

    def search(
        self, filters: Mapping | None = None, cursor: str | None = None, limit: int = 50
    ) -> dict:
        return self.reads.search(filters, cursor, limit)

    def counts(self, territory_code: str) -> dict:
        return self.reads.counts(territory_code)

    def check_deadlines(self) -> dict:
        return self.deadlines.check_deadlines()
