"""The upload slot's owner check, remembered briefly per caller.

An upload slot is given only if the service that owns what the media will belong to (events
for an incident, population for visits and residents) lets the caller see it: an RPC per
slot. A phone sends a report's photos one after another, each asking the same question for
the same caller and owner, so a yes is kept for `REMEMBERED_FOR`, keyed by everything the
owning service decides by (the caller's id, roles, scope and department, the owner's kind
and id). A no is never kept, and reading media (records, links, pairs, deletion) always
asks afresh: a scope taken away shows at once there, and within `REMEMBERED_FOR` for slots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from nameko.extensions import DependencyProvider

from gridwork_common.clock import Clock, clock_from_config
from gridwork_common.context import CallerContext

REMEMBERED_FOR = timedelta(seconds=30)
MAX_REMEMBERED = 10_000

OwnerLookup = Callable[[str, str], Mapping]


class RecentOwnerChecks:
    """The yes answers of the last `REMEMBERED_FOR`, shared by a container's workers."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._until: dict[tuple, datetime] = {}

    def remembering(self, lookup: OwnerLookup, caller: CallerContext) -> OwnerLookup:
        """`lookup` for `caller`, skipped while a recent yes for the same question holds."""
        identity = (caller.user_id, tuple(sorted(caller.roles)), caller.scope, caller.department)

        def check(kind: str, owner_id: str) -> Mapping:
            key = (*identity, kind, owner_id)
            now = self.clock()
            if self._until.get(key, now) > now:
                return {}
            owner = lookup(kind, owner_id)  # NotFound outside the caller's scope: not kept
            self._until.pop(key, None)
            if len(self._until) >= MAX_REMEMBERED:
                self._until.pop(next(iter(self._until)))  # the oldest answer
            self._until[key] = now + REMEMBERED_FOR
            return owner

        return check


class OwnerChecks(DependencyProvider):
    def setup(self):
        self.checks = RecentOwnerChecks(clock_from_config(self.container.config))

    def get_dependency(self, worker_ctx) -> RecentOwnerChecks:
        return self.checks
