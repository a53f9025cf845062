"""Locating reports without a round trip to the population service for each one.

The county's grid polygons change rarely (a territory import), so the events service
keeps them in memory (`domain.grids.GridIndex`), loaded over RPC on first use. Every
grid.updated event the population service publishes (in the transaction that changes a
grid) drops the index in every replica (a broadcast handler in service.py); an index
whose load began before such an event is not kept, and an index older than
`MAX_AGE_S` is reloaded, in case an event was missed. A point the index cannot place
for sure (outside every grid, or within metres of an outline) is asked of the population
service, which stays the authority."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from nameko.extensions import DependencyProvider

from services.events.domain.grids import GridIndex

MAX_AGE_S = 600.0


class GridCache:
    def __init__(
        self, max_age_s: float = MAX_AGE_S, monotonic: Callable[[], float] = time.monotonic
    ):
        self.max_age_s = max_age_s
        self.monotonic = monotonic
        self.lock = threading.Lock()  # green under eventlet: one load at a time
        self.generation = 0
        self.index: GridIndex | None = None
        self.loaded_at = 0.0

    def invalidate(self) -> None:
        self.generation += 1
        self.index = None

    def grid_of(
        self,
        lon: float,
        lat: float,
        load_grids: Callable[[], list[Mapping]],
        ask: Callable[[float, float], Mapping],
    ) -> str:
        """The grid code of a point: from the index, else `ask(lon, lat)` (a `locate`
        answer, or its error)."""
        code = self._index(load_grids).grid_at(lon, lat)
        return code if code is not None else ask(lon, lat)["grid"]["code"]

    def _index(self, load_grids: Callable[[], list[Mapping]]) -> GridIndex:
        index = self._fresh()
        if index is not None:
            return index
        with self.lock:
            index = self._fresh()  # another caller may have loaded it meanwhile
            if index is not None:
                return index
            generation = self.generation
            index = GridIndex(load_grids())
            if generation == self.generation:  # no grid changed while it loaded
                self.index, self.loaded_at = index, self.monotonic()
            return index

    def _fresh(self) -> GridIndex | None:
        index = self.index
        if index is not None and self.monotonic() - self.loaded_at < self.max_age_s:
            return index
        return None


class GridLocator(DependencyProvider):
    """One GridCache per service container (shared by its workers)."""

    def setup(self):
        self.cache = GridCache()

    def get_dependency(self, worker_ctx):
        return self.cache
