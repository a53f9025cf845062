"""Batched event handlers (gridwork_common/event_batches.py) in a real nameko container on
a real broker: a steady stream is taken in batches of about its rate times `wait_s`, not
in the few events that came while the previous batch was handled (each call costs its
handler a transaction, however few events it holds)."""

import itertools
import time

import eventlet
import pytest
from kombu import Connection, Exchange, Producer

from devstack.processes import wait_until
from gridwork_common.event_batches import batched_event_handler

pytestmark = pytest.mark.integration

WAIT_S = 0.1
HANDLING_S = 0.02  # longer than between two events: some always come during a call
EVENTS = 60
SPACING_S = 0.005


class Batches:
    name = "batches"
    calls: list[tuple[float, int]] = []  # (when the call started, its events)

    @batched_event_handler("probe", "thing.*", wait_s=WAIT_S)
    def on_thing(self, payloads):
        Batches.calls.append((time.monotonic(), len(payloads)))
        eventlet.sleep(HANDLING_S)


def test_a_steady_stream_is_taken_a_wait_apart_not_as_it_trickled_in(container_factory, config):
    Batches.calls = []
    container = container_factory(Batches, config)
    container.start()
    exchange = Exchange("probe.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        producer = Producer(connection.default_channel, exchange=exchange, serializer="json")
        started = time.monotonic()
        for number in range(EVENTS):
            producer.publish({"number": number}, routing_key="thing.done")
            time.sleep(SPACING_S)
        publishing_s = time.monotonic() - started
    wait_until(lambda: sum(size for _, size in Batches.calls) == EVENTS, 10, "every event")

    starts = [when for when, _ in Batches.calls]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # A batch starts once its first event has waited WAIT_S, and that event came after
    # the previous batch started: no two calls closer than that (none was full).
    assert min(gaps, default=WAIT_S) >= WAIT_S - 0.002, gaps
    assert len(Batches.calls) <= publishing_s / WAIT_S + 2, Batches.calls
