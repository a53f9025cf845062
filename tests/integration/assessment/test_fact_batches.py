"""The assessment's event handlers take their deliveries in batches (one transaction a
batch, acked after it committed), on the real broker: every event is folded once, a
queue that filled while the service was down is taken many events a call, and a
redelivery after a crash (the transaction committed, the ack lost) folds nothing twice."""

import pytest
from kombu import Connection, Exchange, Producer

from devstack.processes import wait_until
from services.assessment import facts, store
from services.assessment.service import AssessmentService
from tests.integration.assessment.test_summaries import (
    EXCHANGES,
    assert_as_defined,
    generated_events,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def batch_sizes(monkeypatch):
    """How many deliveries each handler call got (the real function still runs)."""
    sizes = []
    record_all = facts.record_all

    def counting(db, payloads):
        sizes.append(len(payloads))
        return record_all(db, payloads)

    monkeypatch.setattr(facts, "record_all", counting)
    return sizes


def _publish(config, payloads):
    exchanges = {name: Exchange(name, type="topic", durable=True) for name in EXCHANGES.values()}
    with Connection(config["AMQP_URI"]) as connection:
        producer = Producer(connection.default_channel, serializer="json")
        for exchange in exchanges.values():
            exchange(connection.default_channel).declare()
        for payload in payloads:
            service = payload["source"].rsplit("/", 1)[1]
            routing_key = facts.fact_from_event(payload)["type"]
            producer.publish(
                payload, exchange=exchanges[EXCHANGES[service]], routing_key=routing_key
            )


def _queues_declared(runner_factory, config):
    """The service's queues exist (and hold what is published) while it is down."""
    runner = runner_factory(config, AssessmentService)
    runner.start()
    runner.stop()


def test_a_filled_queue_is_taken_in_batches_and_every_event_folded_once(
    db, runner_factory, config, batch_sizes
):
    _queues_declared(runner_factory, config)
    events = generated_events(seed=11, cases=120)
    _publish(config, events)
    runner = runner_factory(config, AssessmentService)
    runner.start()
    expected = len({facts.fact_from_event(payload)["_id"] for payload in events})
    wait_until(lambda: db[store.FACTS].count_documents({}) == expected, 120, "facts")
    runner.stop()  # waits for the calls under way
    assert db[store.FACTS].count_documents({}) == expected
    assert sum(batch_sizes) == len(events)
    assert max(batch_sizes) > 1 and len(batch_sizes) < len(events) / 2
    assert_as_defined(db, list(db[store.FACTS].find()), every_kind=False)


def test_a_redelivery_after_a_crash_folds_nothing_twice(db, runner_factory, config):
    """A replica folded a batch and died before its acks: the broker delivers those
    events again (here: their facts are in the store already when they arrive), with
    others; and a replica killed while folding leaves its deliveries to the next one."""
    _queues_declared(runner_factory, config)
    events = generated_events(seed=12, cases=120)
    committed_before_the_crash = events[: len(events) // 3]
    assert facts.record_all(db, committed_before_the_crash) > 0
    _publish(config, events)

    crashing = runner_factory(config, AssessmentService)
    crashing.start()
    wait_until(lambda: db[store.FACTS].count_documents({}) > len(events) // 2, 120, "some facts")
    crashing.kill()  # whatever it held unacked goes back to the queues

    expected = len({facts.fact_from_event(payload)["_id"] for payload in events})
    runner = runner_factory(config, AssessmentService)
    runner.start()
    wait_until(lambda: db[store.FACTS].count_documents({}) == expected, 120, "facts")
    wait_until(lambda: _drained(config), 60, "queues drained")
    runner.stop()
    assert db[store.FACTS].count_documents({}) == expected
    assert_as_defined(db, list(db[store.FACTS].find()), every_kind=False)


def test_a_payload_that_is_no_cloudevent_is_left_out_and_its_batch_folded(db):
    events = generated_events(seed=13, cases=5)
    assert facts.record_all(db, [*events[:3], {"not": "an event"}, *events[3:]]) == len(
        {facts.fact_from_event(payload)["_id"] for payload in events}
    )


def _drained(config) -> bool:
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        return all(
            channel.queue_declare(queue, passive=True).message_count == 0
            for queue in (
                "evt-events-incident.#--assessment.on_incident",
                "evt-population-visit.*--assessment.on_visit",
                "evt-population-resident.*--assessment.on_resident",
                "evt-population-patrol.*--assessment.on_patrol",
                "evt-population-grid.updated--assessment.on_grid",
                "evt-gateway-account.*--assessment.on_account",
            )
        )
