"""Each service's `health` RPC over a real broker, against a real mongod and S3 server."""

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import free_port
from gridwork_common.config import Settings
from services.assessment.service import AssessmentService
from services.events.service import EventsService
from services.media.service import MediaService
from services.media.storage import media_store
from services.population.service import PopulationService

pytestmark = pytest.mark.integration

MONGO_ONLY = [PopulationService, EventsService, AssessmentService]


@pytest.mark.parametrize("service_cls", MONGO_ONLY, ids=lambda cls: cls.name)
def test_health_reports_mongo_up(container_factory, config, service_cls):
    container_factory(service_cls, config).start()
    with ClusterRpcProxy(config, timeout=10) as rpc:
        report = rpc[service_cls.name].health()
    assert report["service"] == service_cls.name
    assert report["status"] == "up"
    assert report["components"]["mongo"]["status"] == "up"
    assert report["components"]["mongo"]["latency_ms"] >= 0


@pytest.mark.parametrize("service_cls", MONGO_ONLY, ids=lambda cls: cls.name)
def test_health_reports_mongo_down(container_factory, settings, service_cls):
    unreachable = settings.with_changes(mongo_uri="mongodb://127.0.0.1:1/?directConnection=true")
    config = unreachable.nameko_config()
    container_factory(service_cls, config).start()
    with ClusterRpcProxy(config, timeout=10) as rpc:
        report = rpc[service_cls.name].health()
    assert report["status"] == "down"
    assert report["components"]["mongo"]["status"] == "down"
    assert report["components"]["mongo"]["error"]


def test_media_health_checks_mongo_and_the_bucket(container_factory, settings):
    media_store(settings).ensure_bucket()
    config = settings.nameko_config()
    container_factory(MediaService, config).start()
    with ClusterRpcProxy(config, timeout=10) as rpc:
        report = rpc.media.health()
    assert report["status"] == "up"
    assert {name: c["status"] for name, c in report["components"].items()} == {
        "mongo": "up",
        "object_storage": "up",
    }


def test_media_health_names_a_missing_bucket(container_factory, settings):
    config = settings.with_changes(s3_bucket="no-such-bucket-here").nameko_config()
    container_factory(MediaService, config).start()
    with ClusterRpcProxy(config, timeout=10) as rpc:
        report = rpc.media.health()
    storage = report["components"]["object_storage"]
    assert report["status"] == "down"
    assert storage["status"] == "down"
    assert "no-such-bucket-here" in storage["error"]
    assert report["components"]["mongo"]["status"] == "up"


def test_media_health_reports_unreachable_storage(container_factory, settings: Settings):
    from devstack.processes import free_port

    config = settings.with_changes(s3_endpoint=f"127.0.0.1:{free_port()}").nameko_config()
    container_factory(MediaService, config).start()
    with ClusterRpcProxy(config, timeout=15) as rpc:
        report = rpc.media.health()
    assert report["components"]["object_storage"]["status"] == "down"
    assert "unreachable" in report["components"]["object_storage"]["error"]


def test_bucket_creation_is_idempotent(settings):
    store = media_store(settings)
    store.ensure_bucket()
    store.ensure_bucket()
    store.check_bucket()


def _probe(port: int, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def test_probes_answer_from_the_replica_itself_beside_its_metrics(container_factory, settings):
    port = free_port()
    config = settings.with_changes(metrics_port=port).nameko_config()
    container = container_factory(PopulationService, config)
    container.start()

    live = _probe(port, "/healthz")
    assert (live.status_code, live.json()["status"]) == (200, "up")
    ready = _probe(port, "/readyz")
    assert ready.status_code == 200
    report = ready.json()["components"]["population"]
    assert report["components"]["mongo"]["status"] == "up"
    # The readiness check ran the service's own `health` method in a local worker.
    metrics = _probe(port, "/metrics").text
    assert 'gridwork_entrypoint_calls_total{entrypoint="health"' in metrics

    container.stop()
    stopped = _probe(port, "/healthz")
    assert (stopped.status_code, stopped.json()["status"]) == (503, "down")
    assert _probe(port, "/readyz").status_code == 503


def test_a_replica_without_mongo_is_alive_but_not_ready(container_factory, settings):
    port = free_port()
    unreachable = settings.with_changes(
        mongo_uri="mongodb://127.0.0.1:1/?directConnection=true", metrics_port=port
    )
    container_factory(EventsService, unreachable.nameko_config()).start()

    assert _probe(port, "/healthz").status_code == 200  # no restart for an outage elsewhere
    ready = _probe(port, "/readyz")
    assert ready.status_code == 503
    report = ready.json()["components"]["events"]
    assert report["components"]["mongo"]["status"] == "down"
