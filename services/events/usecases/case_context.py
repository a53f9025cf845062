"""What every part of the incident desk works with: the events database, its cases, the
county's setup, the event publisher, the caller and the clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from pymongo.database import Database

from gridwork_common.context import CallerContext
from gridwork_common.events import EventPublisher
from services.events.domain import incident as loop
from services.events.repository import Cases
from services.events.usecases.setup import CountySetup


@dataclasses.dataclass(frozen=True)
class CaseContext:
    db: Database
    cases: Cases
    setup: CountySetup
    events: EventPublisher | None
    caller: CallerContext
    clock: Callable[[], datetime]

    @property
    def actor(self) -> loop.Actor:
        return loop.Actor(
            user_id=self.caller.user_id or "anonymous",
            roles=tuple(self.caller.roles),
            scope=self.caller.scope,
            department=self.caller.department,
        )
