"""The media service's two roles apart (service.py): the API answering slots and confirms,
the describer doing the steps after a confirm in a process of its own, and the combined
service that deployments which never split still run, all on one queue."""

import gridwork_common.green  # noqa: F401  (nameko's containers below expect eventlet)

# isort: split

import pytest
from nameko.containers import ServiceContainer
from nameko.events import EventHandler
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import wait_until
from services.events.service import EventsService
from services.media.service import MediaApiService, MediaDescriberService, MediaService
from services.media.storage import media_store
from services.population.service import PopulationService
from tests.integration.media.test_media import SETUP, WORKER, _upload, jpeg
from tests.population_data import COUNTY, TOWNSHIP_A, VILLAGE_A, county_features

pytestmark = pytest.mark.integration

RECEIVED_QUEUE = "evt-media-media.received--media.check_and_describe"


def _handler_queues(service_cls, config) -> list[str]:
    container = ServiceContainer(service_cls, config)
    handlers = [ep for ep in container.entrypoints if isinstance(ep, EventHandler)]
    for handler in handlers:
        handler.setup()  # names the queue; connects to nothing
    return [handler.queue.name for handler in handlers]


def test_every_role_that_describes_consumes_the_same_queue(config):
    assert _handler_queues(MediaService, config) == [RECEIVED_QUEUE]
    assert _handler_queues(MediaDescriberService, config) == [RECEIVED_QUEUE]
    assert _handler_queues(MediaApiService, config) == []


@pytest.fixture
def api_only(runner_factory, settings, config):
    """Population, events and the media API, without anything that describes."""
    media_store(settings).ensure_bucket()
    runner_factory(config, PopulationService, EventsService, MediaApiService).start()
    with ClusterRpcProxy(config, context_data=SETUP.to_context_data(), timeout=30) as rpc:
        rpc.population.import_territory(county_features())
        rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A, VILLAGE_A])
    return config


def _queue(rabbit_manager, rabbit_config, name: str) -> dict:
    return rabbit_manager.get_queue(rabbit_config["vhost"], name)


def test_the_api_confirms_and_the_describer_apart_describes(
    api_only, cluster_as, runner_factory, rabbit_manager, rabbit_config
):
    runner_factory(api_only, MediaDescriberService).start()  # a process of its own
    media = cluster_as(WORKER).media
    incident = cluster_as(WORKER).events.report_incident(
        {"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]}, "r1"
    )["incident"]["id"]
    slot = _upload(media, jpeg(), incident)
    stored = media.confirm_upload(slot["media_id"])
    assert stored["state"] == "stored" and stored["thumbnail"] == {"status": "pending"}
    wait_until(
        lambda: media.get_media(slot["media_id"])["thumbnail"]["status"] == "ready",
        30,
        "the describer's thumbnail",
    )
    record = media.get_media(slot["media_id"])
    assert record["metadata"]["gps"] and record["integrity"] == "verified"

    # Only the API answers RPC: the describer holds no consumer on rpc-media.
    def consumers() -> tuple:
        return tuple(
            _queue(rabbit_manager, rabbit_config, name).get("consumers")
            for name in ("rpc-media", RECEIVED_QUEUE)
        )

    # Counts refresh every few seconds: wait for (1, 1); a describer holding an RPC
    # consumer shows (2, 1) for good and times out.
    wait_until(lambda: consumers() == (1, 1), 30, "one consumer on each queue")
    assert consumers() == (1, 1)


def test_a_confirm_before_any_describer_ran_is_described_once_one_starts(
    api_only, cluster_as, runner_factory, rabbit_manager, rabbit_config
):
    """An upgrade's order does not matter: the queue is the combined service's, declared
    by whichever role starts first, and keeps what arrives until a describer consumes it."""
    describer = runner_factory(api_only, MediaDescriberService)
    describer.start()
    describer.stop()  # the queue exists now, with no consumer
    media = cluster_as(WORKER).media
    incident = cluster_as(WORKER).events.report_incident(
        {"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]}, "r2"
    )["incident"]["id"]
    slot = _upload(media, jpeg(), incident)
    media.confirm_upload(slot["media_id"])
    wait_until(
        lambda: _queue(rabbit_manager, rabbit_config, RECEIVED_QUEUE).get("messages") == 1,
        30,
        "media.received kept in its queue",
    )
    assert media.get_media(slot["media_id"])["thumbnail"] == {"status": "pending"}

    runner_factory(api_only, MediaService).start()  # the old, combined process
    wait_until(
        lambda: media.get_media(slot["media_id"])["thumbnail"]["status"] == "ready",
        30,
        "the combined service's thumbnail",
    )
