"""What every population use case shares: the caller, permissions, scope, events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from pymongo.client_session import ClientSession
from pymongo.database import Database

from gridwork_common.clock import Clock, utc_now
from gridwork_common.context import CallerContext
from gridwork_common.errors import Forbidden, InvalidInput, NotFound
from gridwork_common.events import EventPublisher
from gridwork_common.outbox import Outbox, Staged
from gridwork_common.paging import page_limit
from services.population import store, topics
from services.population.domain import access
from services.population.domain.codes import level_of
from services.population.protection import PersonalDataCipher

T = TypeVar("T")


def iso_time(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class UseCases:
    def __init__(
        self,
        db: Database,
        cipher: PersonalDataCipher,
        events: EventPublisher | None,
        caller: CallerContext,
        county_code: str,
        clock: Clock = utc_now,
    ):
        self.db = db
        self.cipher = cipher
        self.events = events
        self.caller = caller
        self.county_code = county_code
        self.clock = clock
        self._staged: Staged | None = None  # the open changes() transaction

    def require(self, allowed: tuple[str, ...], action: str) -> None:
        if not self.caller.has_role(*allowed):
            raise Forbidden(f"{action} needs one of the roles: {', '.join(allowed)}")

    def _visible(self, doc: Mapping | None, what: str, key: str) -> Mapping:
        if doc is None or not access.sees(self.caller, doc.get("grid_code") or doc.get("_id")):
            raise NotFound(f"no {what} {key}")
        return doc

    def changes(self, change: Callable[[ClientSession], T]) -> T:
        """`change(session)` in one transaction with the events it announces: `publish`
        inside stores each event in the outbox with the change (pass the session to
        every write); they are sent once it commits. A transient error (a write
        conflict) runs the change again."""

        def staged_change(staged: Staged) -> T:
            self._staged = staged
            try:
                return change(staged.session)
            finally:
                self._staged = None

        return Outbox(self.db, self.events, self.clock).run(staged_change)

    def publish(self, routing_key: str, subject: str, data: dict) -> None:
        """Announce a change: only inside `changes()`, so the event is written with it."""
        if routing_key not in topics.TOPICS:
            raise ValueError(f"{routing_key} is not a documented population topic")
        if self._staged is None:
            raise RuntimeError("publish only inside changes(): with the change it announces")
        self._staged.announce(routing_key, subject, data)

    def _page(
        self,
        collection: str,
        query: dict,
        cursor: str | None,
        limit: int,
        render=None,
        render_all=None,
    ):
        """One page in `_id` order after `cursor` (keyset paging: the collection's
        `(path, _id)` index finds the page's first item without skipping the ones before
        it). Each item through `render`, or the whole page through `render_all`."""
        query = access.within_scope(self.caller, query)
        if cursor:
            query = {"$and": [query, {"_id": {"$gt": cursor}}]}
        docs = list(self.db[collection].find(query).sort("_id", 1).limit(page_limit(limit)))
        return {
            "items": render_all(docs) if render_all else [render(doc) for doc in docs],
            "next_cursor": docs[-1]["_id"] if len(docs) == limit else None,
        }

    def _grid(self, grid_code: str) -> Mapping:
        if not isinstance(grid_code, str) or level_of(grid_code, "grid_code") != "grid":
            raise InvalidInput("grid_code", "must be a 15-digit grid code")
        return self._visible(
            self.db[store.TERRITORY].find_one({"_id": grid_code}, {"geometry": 0}),
            "grid",
            grid_code,
        )

    def _resident(self, resident_id: str) -> Mapping:
        if not isinstance(resident_id, str):
            raise InvalidInput("resident_id", "must be a string")
        doc = self.db[store.RESIDENTS].find_one({"_id": resident_id})
        return self._visible(doc, "resident", resident_id)
