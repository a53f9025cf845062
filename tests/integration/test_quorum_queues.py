"""Quorum queues by the vhost's default queue type, on the real broker: a fresh vhost made
from deploy/rabbitmq/county/definitions.json the way production imports it, the four
services started on it, and their queues read back through the management API."""

import json
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from devstack.processes import wait_until
from gridwork_common.clock import CLOCK_CONFIG_KEY
from gridwork_common.context import CallerContext
from services.assessment.service import AssessmentService
from services.events.service import EventsService
from services.gateway.rpc import ServiceRpc
from services.media.service import MediaService
from services.media.storage import media_store
from services.population.service import PopulationService

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COUNTY_DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "county" / "definitions.json"
MANAGEMENT = "http://127.0.0.1:15672/api"
AUTH = ("guest", "guest")
PREFIXES = ("rpc-", "evt-")
SERVICES = (PopulationService, EventsService, MediaService, AssessmentService)


def definitions_for(vhost: str) -> dict:
    """The county's definitions with its vhost `/` renamed, as a test may not own `/`."""
    definitions = json.loads(COUNTY_DEFINITIONS.read_text())
    for item in definitions["vhosts"]:
        item["name"] = vhost
    for section in ("exchanges", "queues", "bindings", "policies"):
        for item in definitions.get(section, []):
            item["vhost"] = vhost
    return definitions


@pytest.fixture
def county_vhost():
    vhost = f"gridwork-quorum-{uuid.uuid4().hex[:8]}"
    answer = requests.post(
        f"{MANAGEMENT}/definitions", json=definitions_for(vhost), auth=AUTH, timeout=30
    )
    assert answer.status_code in (201, 204), answer.text
    try:
        requests.put(
            f"{MANAGEMENT}/permissions/{quote(vhost, safe='')}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            auth=AUTH,
            timeout=10,
        ).raise_for_status()
        yield vhost
    finally:
        requests.delete(f"{MANAGEMENT}/vhosts/{quote(vhost, safe='')}", auth=AUTH, timeout=30)


def queues_in(vhost: str) -> dict[str, dict]:
    answer = requests.get(f"{MANAGEMENT}/queues/{quote(vhost, safe='')}", auth=AUTH, timeout=10)
    answer.raise_for_status()
    return {queue["name"]: queue for queue in answer.json()}


def q_is_exclusive(queue: dict) -> bool:
    return bool(queue.get("exclusive") or queue.get("auto_delete"))


def test_the_county_vhost_makes_service_queues_quorum_and_reply_queues_classic(
    county_vhost, container_factory, settings, clock
):
    vhost = requests.get(
        f"{MANAGEMENT}/vhosts/{quote(county_vhost, safe='')}", auth=AUTH, timeout=10
    ).json()
    assert vhost["metadata"]["default_queue_type"] == "quorum"

    on_vhost = settings.with_changes(amqp_uri=f"amqp://guest:guest@127.0.0.1:5672/{county_vhost}")
    media_store(on_vhost).ensure_bucket()
    config = {**on_vhost.nameko_config(), CLOCK_CONFIG_KEY: clock}
    for service_cls in SERVICES:
        container_factory(service_cls, config).start()
    # The gateway's way of calling: its reply queue is declared on first use.
    gateway_rpc = ServiceRpc(config, timeout=10)
    caller = CallerContext(user_id="ops", roles=("admin",), scope="530402")
    try:
        for service_cls in SERVICES:
            report = gateway_rpc.call(service_cls.name, "health", caller=caller)
            assert report["service"] == service_cls.name
        # The management API reports a queue's policy with its next statistics.
        wait_until(
            lambda: all(
                "policy" in q for n, q in queues_in(county_vhost).items() if n[:4] in PREFIXES
            ),
            30,
            "the policies on the services' queues",
        )
        queues = queues_in(county_vhost)
    finally:
        gateway_rpc.discard()

    calls = {name: q for name, q in queues.items() if name.startswith("rpc-")}
    events = {name: q for name, q in queues.items() if name.startswith("evt-")}
    # A broadcast handler's queue is one replica's own (exclusive, auto-deleted: nameko
    # names it with the replica's id), which a quorum queue cannot be: classic.
    broadcasts = {name: events.pop(name) for name in list(events) if q_is_exclusive(events[name])}
    assert all(queue["type"] == "classic" for queue in broadcasts.values()), broadcasts
    replies = {name: q for name, q in queues.items() if name.startswith("rpc.reply-")}
    assert set(calls) == {f"rpc-{cls.name}" for cls in SERVICES}
    # The assessment service listens to the other services' events.
    assert any(name.startswith("evt-events-incident") for name in events), sorted(events)
    for name, queue in {**calls, **events}.items():
        assert queue["type"] == "quorum", name
        assert queue["durable"], name
    assert {queue["policy"] for queue in calls.values()} == {"gridwork-poison-calls"}
    assert {queue["policy"] for queue in events.values()} == {"gridwork-poison-events"}
    # One reply queue per service holding an RPC proxy, one for the gateway's thread:
    # classic, and gone five minutes after their process (x-expires).
    reply_owners = {name.split("-")[1] for name in replies}
    assert {"events", "media", "assessment", "standalone_rpc_proxy"} <= reply_owners
    for name, queue in replies.items():
        assert queue["type"] == "classic", name
        assert queue["arguments"]["x-expires"] == 300_000, name
    assert queues["gridwork-dead-letters"]["type"] == "quorum"


def test_a_vhost_without_the_default_keeps_classic_queues(container_factory, config):
    """The control: the same service on the tests' ordinary vhost declares a classic
    queue, so the quorum type above comes from the vhost, not from the code."""
    container_factory(PopulationService, config).start()
    vhost = config["AMQP_URI"].rsplit("/", 1)[1]
    assert queues_in(vhost)["rpc-population"]["type"] == "classic"
