"""Patrol records, their track pieces and links, and the grids a track crosses: the
only code of the patrol use cases that touches pymongo."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from gridwork_common.clock import Clock
from gridwork_common.events import EventPublisher
from gridwork_common.outbox import Outbox, Staged
from services.population import store, topics

T = TypeVar("T")


class AlreadyStored(Exception):
    """A record with this key exists (the caller reads it and compares)."""


@dataclass
class PatrolWrites:
    """The writes of one transaction and the events announcing them (sent after commit)."""

    db: Database
    staged: Staged

    @property
    def session(self) -> ClientSession:
        return self.staged.session

    def insert_patrol(self, document: dict) -> None:
        try:
            self.db[store.PATROLS].insert_one(document, session=self.session)
        except DuplicateKeyError:
            raise AlreadyStored(document["_id"]) from None

    def insert_piece(self, document: dict) -> None:
        try:
            self.db[store.PATROL_PIECES].insert_one(document, session=self.session)
        except DuplicateKeyError:
            raise AlreadyStored(document["_id"]) from None

    def save_patrol(self, patrol_id: str, changes: Mapping) -> None:
        self.db[store.PATROLS].update_one(
            {"_id": patrol_id}, {"$set": dict(changes)}, session=self.session
        )

    def patrol(self, patrol_id: str) -> dict | None:
        """The patrol as this transaction sees it (its snapshot, with its own writes)."""
        return self.db[store.PATROLS].find_one({"_id": patrol_id}, session=self.session)

    def pieces(self, patrol_id: str) -> list[dict]:
        return list(
            self.db[store.PATROL_PIECES]
            .find({"patrol_id": patrol_id}, session=self.session)
            .sort("piece", 1)
        )

    def link(self, patrol_id: str, kind: str, ref_id: str, worker_id: str, at: datetime) -> None:
        link_to_patrol(self.db, self.session, patrol_id, kind, ref_id, worker_id, at)

    def announce(self, routing_key: str, subject: str, data: dict) -> None:
        if routing_key not in topics.TOPICS:
            raise ValueError(f"{routing_key} is not a documented population topic")
        self.staged.announce(routing_key, subject, data)


class PatrolRepository:
    def __init__(self, db: Database, events: EventPublisher | None, clock: Clock):
        self.db = db
        self.events = events
        self.clock = clock

    def in_transaction(self, change: Callable[[PatrolWrites], T]) -> T:
        """`change(writes)` in one transaction with the events it announces (the
        transactional outbox); a write conflict with a concurrent request runs it again."""
        return Outbox(self.db, self.events, self.clock).run(
            lambda staged: change(PatrolWrites(self.db, staged))
        )

    def patrol(self, patrol_id: str) -> dict | None:
        return self.db[store.PATROLS].find_one({"_id": patrol_id})

    def piece(self, patrol_id: str, piece: int) -> dict | None:
        return self.db[store.PATROL_PIECES].find_one({"_id": piece_key(patrol_id, piece)})

    def links(self, patrol_id: str, worker_id: str) -> dict[str, list[str]]:
        """The incidents and visits linked to a patrol by its own worker."""
        found: dict[str, list[str]] = {"incident": [], "visit": []}
        rows = self.db[store.PATROL_LINKS].find({"patrol_id": patrol_id, "worker_id": worker_id})
        for row in rows.sort("_id", 1):
            found.setdefault(row["kind"], []).append(row["ref_id"])
        return found

    def page(self, query: dict, cursor: str | None, limit: int) -> list[dict]:
        if cursor:
            query = {"$and": [query, {"_id": {"$gt": cursor}}]}
        return list(self.db[store.PATROLS].find(query, {"raw": 0}).sort("_id", 1).limit(limit))

    def with_tracks(self, query: dict, limit: int) -> list[dict]:
        rows = self.db[store.PATROLS].find(
            {"$and": [query, {"track": {"$ne": None}}]},
            {"worker_id": 1, "grid_code": 1, "state": 1, "started_at": 1, "ended_at": 1,
             "distance_m": 1, "flags": 1, "track": 1},
        )  # fmt: skip
        return list(rows.sort("started_at", -1).limit(limit))

    def grid(self, grid_code: str) -> dict | None:
        return self.db[store.TERRITORY].find_one(
            {"_id": grid_code, "level": "grid"}, {"geometry": 0}
        )

    def grids_crossed(self, county_code: str, geometry: Mapping) -> list[str]:
        """The codes of the county's grids a track (a LineString or Point) touches."""
        try:
            rows = self.db[store.TERRITORY].find(
                {
                    "level": "grid",
                    "path": county_code,
                    "geometry": {"$geoIntersects": {"$geometry": dict(geometry)}},
                },
                {"_id": 1},
            )
            return sorted(row["_id"] for row in rows)
        except OperationFailure:  # a degenerate line mongod cannot index: no grids known
            return []


def link_to_patrol(
    db: Database,
    session: ClientSession,
    patrol_id: str,
    kind: str,
    ref_id: str,
    worker_id: str,
    at: datetime,
) -> None:
    """Note that an incident or a visit was made during a patrol, in the transaction of
    `session` (once per record: a record belongs to one patrol, a repeat changes nothing)."""
    db[store.PATROL_LINKS].update_one(
        {"_id": f"{kind}:{ref_id}"},
        {
            "$setOnInsert": {
                "patrol_id": patrol_id,
                "kind": kind,
                "ref_id": ref_id,
                "worker_id": worker_id,
                "at": at,
            }
        },
        upsert=True,
        session=session,
    )


def piece_key(patrol_id: str, piece: int) -> str:
    return f"{patrol_id}:{piece}"
