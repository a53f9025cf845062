"""Sent events pulled off their cases off the request path, a batch at a time.

A step's events wait in its case (repository.py) until the broker has confirmed them:
the worker writes them and answers, and the thread reading the broker's confirms
(gridwork_common/confirms.py) hands each confirmed id to this replica's batcher. One
green thread per replica pulls what was handed over in one command every `WINDOW_S`,
instead of one command per step. What a crash loses from the batch stays in its case and the
outbox timer sends it again, which at least once allows (consumers de-duplicate by id)."""

from __future__ import annotations

import logging

import eventlet
from eventlet.queue import LightQueue
from nameko.extensions import DependencyProvider

from gridwork_common.mongo import MongoDatabase
from services.events.repository import Cases

log = logging.getLogger(__name__)

WINDOW_S = 0.1  # how long a batch gathers before its one command
MAX_BATCH = 500  # cases per command
_STOP = object()


class SentEvents(DependencyProvider):
    """Gives a worker `forget(case_id, entry_ids)`."""

    def setup(self):
        self.queue: LightQueue = LightQueue()
        self.thread = None

    def start(self):
        self.thread = self.container.spawn_managed_thread(self._run)

    def stop(self):
        # The workers are done: the thread pulls what they handed over, and returns.
        if self.thread is not None:
            self.queue.put(_STOP)
            self.thread.wait()

    def get_dependency(self, worker_ctx):
        return self.forget

    def forget(self, case_id: str, entry_ids: list[str]) -> None:
        self.queue.put((case_id, entry_ids))

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is not _STOP:
                eventlet.sleep(WINDOW_S)
            batch = self._drain([first])
            self._pull(batch)
            if _STOP in batch:
                return

    def _drain(self, batch: list) -> list:
        while len(batch) < MAX_BATCH and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    def _pull(self, batch: list) -> None:
        sent = [item for item in batch if item is not _STOP]
        if not sent:
            return
        try:
            Cases(self._database()).forget_sent(sent)
        except Exception:  # left in their cases: the outbox timer sends them again
            log.warning("sent events left in their cases", exc_info=True)

    def _database(self):
        return next(
            dependency.database
            for dependency in self.container.dependencies
            if isinstance(dependency, MongoDatabase)
        )
