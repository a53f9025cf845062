"""Publishing with asynchronous confirms (gridwork_common.confirms) on the real broker:
the callback runs once the broker has a message, never for one it refused or one whose
connection was lost before its ack; messages keep their order; a service's events leave
as `CloudEventDispatcher` sends them; and the shared outbox deletes an entry once the
broker confirms it, leaving a refused one for the resend."""

import contextlib
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import wait_until
from gridwork_common import event_format
from gridwork_common.clock import ServiceClock
from gridwork_common.confirmed_events import ConfirmingEventDispatcher
from gridwork_common.confirms import ConfirmingPublisher, NotConfirmed
from gridwork_common.context import CallerContext
from gridwork_common.events import CloudEventDispatcher
from gridwork_common.mongo import MongoDatabase
from gridwork_common.outbox import OUTBOX, OUTBOX_INDEXES, Outbox

pytestmark = pytest.mark.integration

EXCHANGE = Exchange("ledger.events", type="topic", durable=True)


@pytest.fixture
def amqp_uri(rabbit_config):
    return rabbit_config["AMQP_URI"]


@pytest.fixture
def broker(amqp_uri):
    """A connection of the test's own, for queues and what reaches them."""
    with Connection(amqp_uri) as connection:
        yield connection


def bound_queue(connection, routing_key: str, **arguments) -> Queue:
    queue = Queue(
        f"q-{uuid.uuid4().hex[:8]}",
        EXCHANGE,
        routing_key=routing_key,
        queue_arguments=arguments or None,
    )
    queue(connection.default_channel).declare()
    return queue


def received(connection, queue: Queue, count: int) -> list:
    messages = []
    simple = connection.SimpleQueue(queue)
    try:
        while len(messages) < count:
            message = simple.get(timeout=5)
            message.ack()
            messages.append(message)
    finally:
        simple.close()
    return messages


def publisher(amqp_uri: str) -> ConfirmingPublisher:
    return ConfirmingPublisher(amqp_uri, EXCHANGE, serializer=event_format.SERIALIZER)


def test_callbacks_run_once_the_broker_has_the_messages_in_the_order_written(amqp_uri, broker):
    queue = bound_queue(broker, "case.#")
    confirmed: list[int] = []
    events = publisher(amqp_uri)
    try:
        for number in range(300):
            written = events.publish(
                f"case.step.{number % 3}",
                {"n": number},
                on_confirmed=lambda number=number: confirmed.append(number),
            )
            assert written
        wait_until(lambda: len(confirmed) == 300, 10, "every message confirmed")
        assert events.waiting() == 0
    finally:
        events.stop()
    assert confirmed == list(range(300))
    messages = received(broker, queue, 300)
    assert [event_format.loads(message.body)["n"] for message in messages] == list(range(300))


def test_a_message_the_broker_refuses_runs_no_confirm_callback(amqp_uri, broker):
    # A full queue that refuses new messages: the broker nacks what is routed to it.
    bound_queue(broker, "case.refused", **{"x-max-length": 0, "x-overflow": "reject-publish"})
    outcomes: list[str] = []
    events = publisher(amqp_uri)
    try:
        assert events.publish(
            "case.refused",
            {"n": 1},
            on_confirmed=lambda: outcomes.append("confirmed"),
            on_refused=lambda: outcomes.append("refused"),
        )
        wait_until(lambda: outcomes, 10, "the broker's answer")
        with pytest.raises(NotConfirmed):
            events.publish_and_wait("case.refused", {"n": 2})
        # The link stays usable: a message routed elsewhere is confirmed.
        events.publish_and_wait("case.accepted", {"n": 3})
    finally:
        events.stop()
    assert outcomes == ["refused"]


class HoldingProxy:
    """A TCP proxy to the broker that can hold back what the broker sends (its acks)
    and cut every connection: a link lost with confirms in flight."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.holding = False
        self.sockets: list[socket.socket] = []
        self.threads = [eventlet.spawn(self._accept)]

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = eventlet.connect(self.target)
            self.sockets += [client, upstream]
            self.threads.append(eventlet.spawn(self._pipe, client, upstream, False))
            self.threads.append(eventlet.spawn(self._pipe, upstream, client, True))

    def _pipe(self, source, target, from_broker: bool):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while from_broker and self.holding:
                    eventlet.sleep(0.01)
                target.sendall(data)
        except (OSError, EOFError):  # the other side, or `cut`, closed it
            return
        finally:
            for sock in (source, target):
                sock.close()

    def cut(self):
        for sock in self.sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)
        self.sockets = []

    def close(self):
        self.cut()
        for thread in self.threads:
            thread.kill()
        self.listener.close()


@pytest.fixture
def proxy(amqp_uri):
    parts = urlsplit(amqp_uri)
    holding = HoldingProxy(parts.hostname, parts.port or 5672)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{holding.port}"
    holding.uri = urlunsplit(parts._replace(netloc=netloc))
    yield holding
    holding.close()


def test_a_connection_lost_before_the_ack_runs_no_confirm_callback_and_the_next_publish_reconnects(
    proxy,
):
    outcomes: list[str] = []
    events = publisher(proxy.uri)
    try:
        assert events.connect()
        proxy.holding = True  # the broker's acks no longer reach the publisher
        assert events.publish(
            "case.step",
            {"n": 1},
            on_confirmed=lambda: outcomes.append("confirmed"),
            on_refused=lambda: outcomes.append("lost"),
        )
        eventlet.sleep(0.3)  # time enough for an ack, were it let through
        assert events.waiting() == 1
        proxy.cut()
        proxy.holding = False
        wait_until(lambda: outcomes, 10, "the loss noticed")
        assert outcomes == ["lost"]
        eventlet.sleep(1.1)  # past the reconnect back-off
        events.publish_and_wait("case.step", {"n": 2})  # over a new connection
    finally:
        events.stop()
    assert outcomes == ["lost"]


def test_a_broker_that_cannot_be_reached_is_reported_at_once(amqp_uri):
    parts = urlsplit(amqp_uri)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    events = publisher(urlunsplit(parts._replace(netloc=netloc)))
    called: list[str] = []
    try:
        assert not events.publish("case.step", {"n": 1}, on_confirmed=lambda: called.append("x"))
        with pytest.raises(NotConfirmed):
            events.publish_and_wait("case.step", {"n": 2})
    finally:
        events.stop()
    assert called == []


class Ledger:
    name = "ledger"
    confirmed = ConfirmingEventDispatcher()
    dispatched = CloudEventDispatcher()

    @rpc
    def announce(self, routing_key: str, data: dict):
        _, envelope = self.confirmed.envelope("entry.added", "subject-1", data)
        self.dispatched.send(routing_key, envelope)
        self.confirmed.send(routing_key, envelope)  # waits for the confirm
        return envelope


def test_a_services_events_leave_as_cloud_event_dispatcher_sends_them(
    container_factory, config, broker
):
    queue = bound_queue(broker, "entry.added.#")
    container_factory(Ledger, config).start()
    caller = CallerContext(user_id="u-1", roles=("admin",), request_id="req-7")
    with ClusterRpcProxy(config, context_data=caller.to_context_data(), timeout=10) as proxy:
        envelope = proxy.ledger.announce("entry.added.530402", {"amount": 3})

    old, new = received(broker, queue, 2)
    assert new.body == old.body and event_format.loads(new.body) == envelope
    assert new.headers == old.headers == {event_format.REQUEST_ID_HEADER: "req-7"}
    assert new.content_type == old.content_type == event_format.CONTENT_TYPE
    assert new.content_encoding == old.content_encoding
    for name in ("delivery_mode", "priority"):
        assert new.properties.get(name) == old.properties.get(name), name
    assert new.properties["delivery_mode"] == 2  # persistent
    assert new.delivery_info["exchange"] == old.delivery_info["exchange"] == "ledger.events"
    assert new.delivery_info["routing_key"] == "entry.added.530402"


class Registry:
    """A service whose changes announce events through the shared outbox."""

    name = "registry"
    db = MongoDatabase(indexes=OUTBOX_INDEXES)
    events = ConfirmingEventDispatcher()
    clock = ServiceClock()

    def _outbox(self) -> Outbox:
        return Outbox(self.db, self.events, self.clock)

    @rpc
    def register(self, routing_key: str, count: int) -> list[str]:
        def change(staged):
            self.db["things"].insert_one({"count": count}, session=staged.session)
            for number in range(count):
                staged.announce(routing_key, "registry", {"n": number})
            return staged.ids

        return self._outbox().run(change)

    @rpc
    def waiting(self) -> list[str]:
        return [entry["_id"] for entry in self.db[OUTBOX].find().sort("created_at", 1)]

    @rpc
    def resend(self) -> int:
        return self._outbox().resend(older_than_s=0)


REGISTRY_EXCHANGE = Exchange("registry.events", type="topic", durable=True)


def test_an_outbox_change_answers_before_the_confirms_and_its_entries_go_once_confirmed(
    container_factory, config, broker
):
    queue = Queue("registry-things", REGISTRY_EXCHANGE, routing_key="thing.#")
    queue(broker.default_channel).declare()
    container_factory(Registry, config).start()
    with ClusterRpcProxy(config, timeout=10) as proxy:
        ids = proxy.registry.register("thing.added", 5)
        wait_until(lambda: proxy.registry.waiting() == [], 10, "confirmed entries deleted")
    messages = received(broker, queue, 5)
    assert [event_format.loads(message.body)["id"] for message in messages] == ids


def test_outbox_entries_the_broker_refuses_stay_for_the_resend(container_factory, config, broker):
    refusing = Queue(
        "registry-refuses",
        REGISTRY_EXCHANGE,
        routing_key="thing.refused",
        queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    refusing(broker.default_channel).declare()
    container_factory(Registry, config).start()
    with ClusterRpcProxy(config, timeout=10) as proxy:
        refused = proxy.registry.register("thing.refused", 2)
        taken = proxy.registry.register("thing.added", 1)
        wait_until(lambda: proxy.registry.waiting() == refused, 10, "the taken one deleted")
        with pytest.raises(RemoteError, match="NotConfirmed"):  # refused again: kept
            proxy.registry.resend()
        assert proxy.registry.waiting() == refused
        refusing(broker.default_channel).delete()
        assert proxy.registry.resend() == 2
        assert proxy.registry.waiting() == []
    assert len(taken) == 1
