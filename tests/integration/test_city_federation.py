"""City level federation on a real broker: two county vhosts and a city vhost, made from
deploy/rabbitmq/ (county and city definitions, the upstreams' shape), on a private node
with the federation plugin (plugins are never enabled on the shared broker). An event
published on a county's topic exchange reaches a consumer bound in the city vhost."""

import json
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from devstack import rabbitmq
from devstack.processes import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq"
COUNTIES = ("530402", "530403")
CITY = "city"


@pytest.fixture(scope="module")
def federation_node():
    why_not = rabbitmq.available()
    if why_not:
        pytest.skip(f"no private RabbitMQ node: {why_not}")
    # Not under pytest's tmp_path: the node runs as the rabbitmq user, who may not enter
    # pytest's private (0700) directories.
    root = Path(tempfile.mkdtemp(prefix="gridwork-federation-"))
    node = rabbitmq.PrivateRabbitMQ(root, plugins=("rabbitmq_federation",))
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def county_definitions(code: str) -> dict:
    """A county's definitions; each county has a broker of its own in production, here a
    vhost of its own on one node."""
    definitions = json.loads((DEFINITIONS / "county" / "definitions.json").read_text())
    for vhost in definitions["vhosts"]:
        vhost["name"] = f"county-{code}"
    for section in ("exchanges", "queues", "bindings", "policies"):
        for item in definitions.get(section, []):
            item["vhost"] = f"county-{code}"
    return definitions


def upstreams(node) -> dict:
    """The example upstreams with their URIs pointed at this node's county vhosts."""
    definitions = json.loads((DEFINITIONS / "city" / "upstreams.example.json").read_text())
    for parameter in definitions["parameters"]:
        code = parameter["name"].removeprefix("county-")
        parameter["value"]["uri"] = f"amqp://guest:guest@127.0.0.1:{node.port}/county-{code}"
    return definitions


def import_definitions(node, name: str, definitions: dict) -> None:
    path = node.root / f"{name}.json"
    path.write_text(json.dumps(definitions))
    shutil.chown(path, rabbitmq.RABBITMQ_USER, rabbitmq.RABBITMQ_USER)
    node.ctl("import_definitions", str(path))


@pytest.fixture(scope="module")
def city(federation_node):
    node = federation_node
    for code in COUNTIES:
        import_definitions(node, f"county-{code}", county_definitions(code))
    import_definitions(
        node, "city", json.loads((DEFINITIONS / "city/definitions.json").read_text())
    )
    for vhost in (*(f"county-{code}" for code in COUNTIES), CITY):
        node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    import_definitions(node, "upstreams", upstreams(node))
    return node


def federated_binding(node, county: str, routing_key: str) -> bool:
    """The city's binding has reached the county: the link's queue in the county vhost is
    bound to the exchange with the city consumer's routing key."""
    listed = node.ctl(
        "list_bindings", "-p", f"county-{county}", "source_name", "destination_name", "routing_key"
    )
    return any(
        line.split("\t")[0] == "events.events"
        and line.split("\t")[1].startswith("federation:")
        and line.split("\t")[-1] == routing_key
        for line in listed.splitlines()
    )


def test_both_counties_events_reach_a_consumer_in_the_city_vhost(city):
    node = city
    routing_key = "incident.#"
    queue_name = f"city-supervision-{uuid.uuid4().hex[:6]}"
    with Connection(f"amqp://guest:guest@127.0.0.1:{node.port}/{CITY}") as in_city:
        supervision = Queue(
            queue_name,
            Exchange("events.events", type="topic", durable=True),
            routing_key=routing_key,
            durable=True,
        )
        supervision(in_city.default_channel).declare()
        for code in COUNTIES:
            wait_until(
                lambda code=code: federated_binding(node, code, routing_key),
                60,
                f"the city's binding federated to county {code}",
            )
        sent = {}
        for code in COUNTIES:
            sent[code] = {"id": str(uuid.uuid4()), "source": f"/counties/{code}/events"}
            with Connection(f"amqp://guest:guest@127.0.0.1:{node.port}/county-{code}") as county:
                producer = county.Producer()
                producer.publish(
                    sent[code],
                    exchange=Exchange("events.events", type="topic", durable=True),
                    routing_key=f"incident.reported.{code}",
                    serializer="json",
                    delivery_mode=2,
                )

        received = []
        with in_city.SimpleQueue(supervision) as consumed:
            wait_until(
                lambda: _take(consumed, received) and len(received) >= len(COUNTIES),
                30,
                "both counties' events in the city",
            )
            _take(consumed, received)
        assert sorted(received, key=lambda e: e["source"]) == [sent[c] for c in COUNTIES]
        quorum = node.ctl("list_queues", "-p", CITY, "name", "type")
        assert f"{queue_name}\tquorum" in quorum


def _take(consumed, received: list) -> bool:
    """Move whatever is waiting into `received` (acked)."""
    while True:
        try:
            message = consumed.get(block=False)
        except consumed.Empty:
            return True
        received.append(message.payload)
        message.ack()
