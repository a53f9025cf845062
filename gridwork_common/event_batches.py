"""Event handlers that take their deliveries in batches: one worker call for up to
`batch_size` events of a queue, or for whatever came once the first of them has waited
`wait_s`, acked together once the call returned, all requeued if it raised. One batch of
a queue is handled at a time; the next is handed over when the previous one is done and
it is full or its first event has waited `wait_s`, so a steady stream comes in batches
of about its rate times `wait_s`, not in pairs that came while the last call ran (each
call costs a transaction, whatever its size).

For a handler whose cost is mostly per call, not per event (one MongoDB transaction,
say): a fact store folds a hundred events in about the time it folds one. At-least-once
delivery is kept: nothing is acked before the call returned, so a crash or an error
redelivers the whole batch, and the handler must be idempotent per event (as every
handler must). The queue is the one nameko's `event_handler` would use (same name,
same bindings), so replacing one with the other moves no message.

    @batched_event_handler("events", "incident.#")
    def on_incident(self, payloads: list[dict]): ...
"""

from __future__ import annotations

import time
from functools import partial

import eventlet
from nameko.containers import ContainerBeingKilled
from nameko.events import EventHandler
from nameko.messaging import QueueConsumer

BATCH_SIZE = 200
WAIT_S = 0.005  # a lone event waits this long for company before it is handled
REQUEUE_PAUSE_S = 0.5  # a failed batch (its store down, say) does not spin on redelivery


class BatchQueueConsumer(QueueConsumer):
    """The shared consumer of batched handlers: a prefetch of a whole batch per queue (a
    batch held unacked while it is handled must not stop the next one filling)."""

    @property
    def prefetch_count(self):
        return 2 * BATCH_SIZE


class BatchedEventHandler(EventHandler):
    queue_consumer = BatchQueueConsumer()

    def __init__(self, *args, batch_size: int = BATCH_SIZE, wait_s: float = WAIT_S, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_size = min(batch_size, BATCH_SIZE)
        self.wait_s = wait_s
        # (body, message, monotonic time of arrival) delivered, not yet handed over
        self._pending: list = []
        self._timer = None
        self._in_flight = False  # a batch of this queue is being handled

    def handle_message(self, body, message):
        self._pending.append((body, message, time.monotonic()))
        if self._in_flight:
            return  # the batch under way hands the next over when it is done
        if len(self._pending) >= self.batch_size:
            self._hand_over()
        elif self._timer is None:
            self._timer = self.container.spawn_managed_thread(
                self._hand_over_when_due, identifier=f"{self.method_name}.batch"
            )

    def _due_in(self) -> float:
        """Seconds until the pending events make a batch: at once when full, else when
        the first of them has waited `wait_s`."""
        if len(self._pending) >= self.batch_size:
            return 0.0
        return max(0.0, self._pending[0][2] + self.wait_s - time.monotonic())

    def _hand_over_when_due(self):
        while self._pending and not self._in_flight and (delay := self._due_in()) > 0:
            eventlet.sleep(delay)
        self._timer = None
        if not self._in_flight:
            self._hand_over()

    def _hand_over(self):
        """One batch under way at a time per queue: what arrives meanwhile makes the next
        batch (one large transaction rather than many small ones queuing for the store)."""
        batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
        if not batch:
            return
        self._in_flight = True
        messages = [message for _, message, _ in batch]
        try:
            self.container.spawn_worker(
                self,
                ([body for body, _, _ in batch],),
                {},
                # the first delivery's headers (its request id, for the logs)
                context_data=self.unpack_message_headers(messages[0]),
                handle_result=partial(self.handle_batch_result, messages),
            )
        except ContainerBeingKilled:
            self._in_flight = False
            for message in messages:
                self.queue_consumer.requeue_message(message)

    def handle_batch_result(self, messages, worker_ctx, result=None, exc_info=None):
        if exc_info is not None:
            eventlet.sleep(REQUEUE_PAUSE_S)
            for message in messages:
                self.queue_consumer.requeue_message(message)
        else:
            for message in messages:
                self.queue_consumer.ack_message(message)
        self._in_flight = False
        # the next batch waits in a thread of its own: this worker still holds its slot
        if self._pending and self._timer is None:
            self._timer = self.container.spawn_managed_thread(
                self._hand_over_when_due, identifier=f"{self.method_name}.batch"
            )
        return result, exc_info


batched_event_handler = BatchedEventHandler.decorator
