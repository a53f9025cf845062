"""The cases as stored: each case document carries, besides the case, the idempotency
records of the commands done on it (`commands`) and the events announcing its changes
that are not yet known to be on the broker (`outbox`). So a step is one atomic write (a
`findAndModify` at the version read), with no transaction and no second collection.

A command's key stays unique across cases (a unique, sparse index on `commands._id`): a key
reused on another case makes that write fail, and the first result is found by the key.
Sent entries are pulled off their cases later, a batch at a time; what a crash or a broker
outage leaves is resent by the outbox timer (consumers de-duplicate by CloudEvent id).
Older releases kept both in collections of their own (`commands`, `outbox`): their
commands are still looked up there and moved into their cases by `drain_legacy_commands`,
and the `outbox` collection stays the shared outbox's (deadline notices use it)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError
from pymongo.write_concern import WriteConcern

from services.events import store

log = logging.getLogger(__name__)

COMMANDS = "commands"  # the field: idempotency records of the commands done on the case
OUTBOX = "outbox"  # the field: events announced by the case's changes, not yet known sent
EMBEDDED = (COMMANDS, OUTBOX)
# Written only by a merge's `$addToSet`, which does not move the version: a step writing
# back the list it read would lose a merge made between its read and its write.
MERGED = "merged_ids"
# Only ever appended to: a step reads its case without it (CASE_STATE) and pushes the
# entries it adds, instead of reading, decoding and writing back the whole history.
TIMELINE = "timeline"
NOT_REWRITTEN = (*EMBEDDED, MERGED, TIMELINE)
DEADLINE_MARKS = ("warned_seq", "overdue_seq", "auto_seq")
WITHOUT_EMBEDDED = dict.fromkeys(EMBEDDED, 0)
CASE_STATE = {**WITHOUT_EMBEDDED, TIMELINE: 0}  # what a step, a render or a check reads
UNJOURNALED = WriteConcern(w=1)
LEGACY_DRAIN_BATCH = 500


class Cases:
    def __init__(self, db: Database):
        self.db = db
        self.collection = db[store.INCIDENTS]

    # ------------------------------------------------------------------ steps
    def add(self, document: dict, outbox: list[dict]) -> None:
        """A new case with the events announcing it, in one insert (a report's key is
        the case's `_id`: the same report twice raises DuplicateKeyError)."""
        # The client's majority write concern, journaled: the 201 tells the reporter the
        # case is kept, and a failover must not roll it back (or its outbox). Its wait is
        # most of a report's `store` stage (bench/gateway.py); it stays.
        self.collection.insert_one({**document, OUTBOX: outbox} if outbox else document)

    def save_step(
        self, before: Mapping, after: dict, record: dict | None, outbox: list[dict]
    ) -> bool:
        """Replace the case read at `before`'s version with `after`, appending its new
        timeline entries (one a version: `before` may be read without its timeline) and
        adding the command's idempotency record and the events, in one command; False
        when the case moved on meanwhile. The deadline timer marks a case (warned,
        overdue, escalated) without a new version: the write also expects the marks as
        read (False if they moved: the step's events, e.g. whether a closed case ever ran
        late, were decided on them), and marks only grow (`$max`: the automatic
        escalation raises its own). Raises DuplicateKeyError when the command's key was
        used on another case."""
        marks = {mark: after.get(mark, 0) for mark in DEADLINE_MARKS}
        update: dict = {
            "$set": {
                name: value
                for name, value in after.items()
                if name != "_id" and name not in DEADLINE_MARKS and name not in NOT_REWRITTEN
            },
            "$max": marks,
        }
        # The version matches, so the stored case is `before` but for its marks.
        dropped = {
            name: ""
            for name in before
            if name not in after and name not in marks and name not in NOT_REWRITTEN
        }
        if dropped:
            update["$unset"] = dropped
        added: dict = {}
        new_versions = after["version"] - before["version"]
        if new_versions > 0:
            added[TIMELINE] = {"$each": after[TIMELINE][-new_versions:]}
        unused: dict = {}
        if record is not None:
            added[COMMANDS] = record
            # The unique index compares cases, not the records within one case.
            unused = {f"{COMMANDS}._id": {"$ne": record["_id"]}}
        if outbox:
            added[OUTBOX] = {"$each": outbox}
        if added:
            update["$push"] = added
        as_read = {
            mark: before.get(mark) or {"$in": [0, None]}  # 0 or never set
            for mark in DEADLINE_MARKS
        }
        # Durable before the step answers: the client's w="majority" (journaled; a
        # failover does not roll it back). The read before it is at the default read
        # concern ("local"): this write is conditional on the version and marks read,
        # so a step decided on a case that has moved on since is not written.
        current = self.collection.find_one_and_update(
            {"_id": before["_id"], "version": before["version"], **as_read, **unused},
            update,
            projection=dict.fromkeys(DEADLINE_MARKS, 1),
            return_document=ReturnDocument.AFTER,
        )
        if current is None:
            return False
        for mark in DEADLINE_MARKS:
            after[mark] = current.get(mark, 0)
        return True

    def version_of(self, case_id: str, command_id: str | None = None) -> tuple[int | None, bool]:
        """The case's version, and whether a command under `command_id` was done on it."""
        projection: dict = {"version": 1}
        if command_id is not None:
            projection[COMMANDS] = {"$elemMatch": {"_id": command_id}}
        current = self.collection.find_one({"_id": case_id}, projection)
        if current is None:
            return None, False
        return current["version"], bool(current.get(COMMANDS))

    def command(self, command_id: str) -> dict | None:
        """The first result of a command by its key: `incident_id`, `action`, `version`
        and `fingerprint`; None if no command was done under it."""
        case = self.collection.find_one({f"{COMMANDS}._id": command_id}, {f"{COMMANDS}.$": 1})
        if case is not None:
            return {**case[COMMANDS][0], "incident_id": case["_id"]}
        return self.db[store.COMMANDS].find_one({"_id": command_id})  # an older release's

    # ------------------------------------------------------------------ the outbox
    def forget_sent(self, sent: Iterable[tuple[str, list[str]]]) -> None:
        """Pull sent entries (by case) off their cases, in one command. Not journaled: a
        removal lost in a crash only means a resend, which at least once allows."""
        case_ids: list[str] = []
        entry_ids: list[str] = []
        for case_id, ids in sent:
            case_ids.append(case_id)
            entry_ids.extend(ids)
        if entry_ids:
            self.collection.with_options(write_concern=UNJOURNALED).update_many(
                {"_id": {"$in": case_ids}}, {"$pull": {OUTBOX: {"_id": {"$in": entry_ids}}}}
            )

    def with_unsent(self, written_before: datetime, limit: int) -> Iterator[dict]:
        """Cases holding events written before `written_before` (the index on
        `outbox.created_at` holds only cases with entries), with those entries."""
        return iter(
            self.collection.find(
                {f"{OUTBOX}.created_at": {"$lt": written_before}}, {OUTBOX: 1}
            ).limit(limit)
        )

    def unsent_backlog(self) -> tuple[int, datetime | None]:
        """How many events wait in cases, and when the oldest was written."""
        rows = list(
            self.collection.aggregate(
                [
                    {"$match": {f"{OUTBOX}.created_at": {"$exists": True}}},
                    {"$unwind": f"${OUTBOX}"},
                    {
                        "$group": {
                            "_id": None,
                            "count": {"$sum": 1},
                            "oldest": {"$min": f"${OUTBOX}.created_at"},
                        }
                    },
                ]
            )
        )
        return (rows[0]["count"], rows[0]["oldest"]) if rows else (0, None)

    def drain_legacy_commands(self) -> int:
        """Move an older release's idempotency records into their cases (then the
        collection is empty and this costs one empty read)."""
        moved = 0
        legacy = self.db[store.COMMANDS]
        for record in legacy.find().sort("_id", ASCENDING).limit(LEGACY_DRAIN_BATCH):
            embedded = {name: value for name, value in record.items() if name != "incident_id"}
            try:
                self.collection.update_one(
                    {"_id": record["incident_id"], f"{COMMANDS}._id": {"$ne": record["_id"]}},
                    {"$push": {COMMANDS: embedded}},
                )
            except DuplicateKeyError:  # the key was used again (on another case) since
                log.warning("an older idempotency record dropped", extra={"key": record["_id"]})
            legacy.delete_one({"_id": record["_id"]})
            moved += 1
        return moved
