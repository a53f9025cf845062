"""The common dependency providers inside real nameko containers, on a real broker."""

import io
import json
import logging

import pytest
from kombu import Connection, Exchange, Queue
from nameko.events import event_handler
from nameko.rpc import RpcProxy, rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from prometheus_client import REGISTRY
from pymongo import ASCENDING, IndexModel

from devstack.processes import wait_until
from gridwork_common.context import Caller, CallerContext
from gridwork_common.events import CloudEventDispatcher, parse_event
from gridwork_common.logs import JsonFormatter
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase

pytestmark = pytest.mark.integration

CALLER = CallerContext(
    user_id="worker-7", roles=("grid_worker",), scope="530402001001", request_id="req-42"
)


class Ledger:
    name = "ledger"
    db = MongoDatabase(
        indexes={"entries": [IndexModel([("code", ASCENDING)], unique=True, name="code_unique")]}
    )

    @rpc
    def database_name(self):
        return self.db.name

    @rpc
    def index_names(self):
        return sorted(self.db.entries.index_information())

    @rpc
    def write_concern(self):
        return self.db.entries.write_concern.document

    @rpc
    def add(self, code):
        return self.db.entries.insert_one({"code": code}).acknowledged


def test_mongo_provider_uses_the_services_own_database_and_creates_indexes_idempotently(
    container_factory, config, settings
):
    first = container_factory(Ledger, config)
    first.start()
    with ClusterRpcProxy(config, timeout=10) as proxy:
        assert proxy.ledger.database_name() == settings.database_name("ledger")
        assert proxy.ledger.index_names() == ["_id_", "code_unique"]
    first.stop()
    provider = next(dep for dep in first.dependencies if isinstance(dep, MongoDatabase))
    assert provider.client is None  # closed on stop

    second = container_factory(Ledger, config)  # indexes exist already: start must not fail
    second.start()
    with ClusterRpcProxy(config, timeout=10) as proxy:
        assert proxy.ledger.index_names() == ["_id_", "code_unique"]


def test_services_write_with_majority_even_when_the_uri_asks_for_less(
    container_factory, config, settings
):
    # What the replica set's operator promises (no acknowledged write rolled back on
    # failover) holds only if every write waits for a majority.
    weaker = settings.with_changes(mongo_uri=settings.mongo_uri + "&w=1")
    container_factory(Ledger, {**config, **weaker.nameko_config()}).start()
    with ClusterRpcProxy(config, timeout=10) as proxy:
        assert proxy.ledger.write_concern() == {"w": "majority"}
        assert proxy.ledger.add("530402001001") is True  # a one-member set's majority


class Back:
    name = "back"
    caller = Caller()

    @rpc
    def whoami(self):
        logging.getLogger("back").info("answering whoami")
        return self.caller.__dict__ | {"roles": list(self.caller.roles)}


class Front:
    name = "front"
    caller = Caller()
    back = RpcProxy("back")
    dispatch = CloudEventDispatcher()

    @rpc
    def relay(self):
        self.dispatch.publish("thing.happened", "thing-1", {"by": self.caller.user_id})
        return self.back.whoami()


class Listener:
    name = "listener"
    caller = Caller()

    @event_handler("front", "thing.happened")
    def on_thing(self, payload):
        Listener.received.append((payload, self.caller))

    received: list = []


def test_caller_context_travels_through_nested_rpc_but_not_through_events(runner_factory, config):
    """Events are read outside Gridwork too (departments): they carry no caller."""
    Listener.received.clear()
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter("back"))
    back_logger = logging.getLogger("back")
    back_logger.addHandler(handler)
    back_logger.setLevel(logging.INFO)
    runner = runner_factory(config, Front, Back, Listener)
    runner.start()
    listener = next(c for c in runner.containers if c.service_name == "listener")
    try:
        with (
            entrypoint_waiter(listener, "on_thing"),
            ClusterRpcProxy(config, context_data=CALLER.to_context_data(), timeout=10) as proxy,
        ):
            seen_by_back = proxy.front.relay()
    finally:
        back_logger.removeHandler(handler)
    assert seen_by_back == {
        "user_id": "worker-7",
        "roles": ["grid_worker"],
        "scope": "530402001001",
        "request_id": "req-42",
        "department": None,
    }
    ((payload, caller_of_handler),) = Listener.received
    assert (caller_of_handler.user_id, caller_of_handler.roles, caller_of_handler.scope) == (
        None,
        (),
        None,
    )
    event = parse_event(payload)
    assert event.type == "gridwork.thing.happened"
    assert event.source == "/counties/530402/front"
    assert event.data == {"by": "worker-7"}
    (line,) = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert line["message"] == "answering whoami"
    assert line["request_id"] == "req-42" and line["user_id"] == "worker-7"
    assert (line["service"], line["entrypoint"]) == ("back", "whoami")
    assert line["call_id"].startswith("back.whoami.")


def test_events_reach_a_plain_amqp_consumer_as_cloudevents_json(container_factory, config):
    """A department's system that is not nameko binds a queue to the service's topic
    exchange and gets CloudEvents in the AMQP binding's structured mode, without
    nameko's context headers (the publishing worker's caller) but the request id."""
    container_factory(Front, config).start()
    container_factory(Back, config).start()
    exchange = Exchange("front.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        queue = Queue("department-inbox", exchange, routing_key="thing.*", auto_delete=True)
        queue(connection.default_channel).declare()
        with ClusterRpcProxy(config, context_data=CALLER.to_context_data(), timeout=10) as proxy:
            proxy.front.relay()
        simple = connection.SimpleQueue(queue)
        message = simple.get(timeout=10)
        body = json.loads(message.body)
        message.ack()
        simple.close()
    assert message.delivery_info["routing_key"] == "thing.happened"
    assert message.content_type == "application/cloudevents+json"
    assert message.headers == {"nameko.request_id": "req-42"}
    assert parse_event(body).subject == "thing-1"


class Counted:
    name = "counted"
    metrics = PrometheusMetrics()

    @rpc
    def ok(self):
        return 1

    @rpc
    def boom(self):
        raise ValueError("nope")


def _sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_calls_errors_and_latency_per_entrypoint(container_factory, config):
    ok = {"service": "counted", "entrypoint": "ok", "entrypoint_type": "Rpc"}
    boom = {**ok, "entrypoint": "boom"}
    before_ok = _sample("gridwork_entrypoint_calls_total", **ok)
    before_boom = _sample("gridwork_entrypoint_errors_total", **boom, exception="ValueError")
    before_latency = _sample("gridwork_entrypoint_latency_seconds_count", **ok)

    container_factory(Counted, config).start()
    with ClusterRpcProxy(config, timeout=10) as proxy:
        for _ in range(3):
            proxy.counted.ok()
        with pytest.raises(Exception, match="nope"):
            proxy.counted.boom()

    # nameko sends the reply before the worker_result hook runs: give the hook a moment.
    wait_until(
        lambda: (
            _sample("gridwork_entrypoint_errors_total", **boom, exception="ValueError")
            == before_boom + 1
        ),
        5,
        "error counted",
    )
    assert _sample("gridwork_entrypoint_calls_total", **ok) == before_ok + 3
    assert _sample("gridwork_entrypoint_latency_seconds_count", **ok) == before_latency + 3
    assert _sample("gridwork_entrypoint_errors_total", **ok, exception="ValueError") == 0
