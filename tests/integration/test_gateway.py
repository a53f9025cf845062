"""The gateway app in-process (Flask test client) against real services on a real broker."""

import eventlet
import pytest
from nameko.exceptions import MethodNotFound, RemoteError, RpcTimeout
from nameko.rpc import rpc

from gridwork_common.context import Caller, CallerContext
from services.assessment.service import AssessmentService
from services.events.service import EventsService
from services.gateway.app import create_app
from services.gateway.rpc import ServiceRpc
from services.media.service import MediaService
from services.media.storage import media_store
from services.population.service import PopulationService

pytestmark = pytest.mark.integration

ALL = (PopulationService, EventsService, MediaService, AssessmentService)


@pytest.fixture
def client(settings):
    return create_app(settings).test_client()


def test_healthz_needs_nothing_but_the_process(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "up"}


def test_readyz_is_200_with_a_report_per_service(runner_factory, config, settings, client):
    media_store(settings).ensure_bucket()
    runner_factory(config, *ALL).start()
    response = client.get("/readyz", headers={"X-Request-Id": "ready-1"})
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "up" and body["down"] == []
    assert set(body["components"]) == {"population", "events", "media", "assessment"}
    assert body["components"]["media"]["components"]["object_storage"]["status"] == "up"
    assert response.headers["X-Request-Id"] == "ready-1"


def test_readyz_is_503_naming_the_missing_service(runner_factory, config, settings, client):
    media_store(settings).ensure_bucket()
    runner = runner_factory(config, *ALL)
    runner.start()
    assert client.get("/readyz").status_code == 200
    runner.kill()
    runner_factory(config, PopulationService, MediaService, AssessmentService).start()

    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert body["down"] == ["events"]
    assert body["components"]["events"]["status"] == "down"
    assert body["components"]["population"]["status"] == "up"


def test_readyz_is_503_when_a_dependency_of_a_service_is_down(runner_factory, settings, client):
    # media runs, but its bucket does not exist: media reports itself down.
    runner_factory(settings.nameko_config(), *ALL).start()
    body = client.get("/readyz").get_json()
    assert body["down"] == ["media"]
    assert body["components"]["media"]["components"]["object_storage"]["status"] == "down"


@pytest.mark.parametrize("path", ["/api/v1/nope", "/open311/v2/nope"])
def test_unknown_api_routes_are_problem_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 404 and problem["title"] == "Not Found"
    assert problem["instance"] == path


def test_other_unknown_addresses_get_the_command_centres_page(client):
    # The command centre is the gateway's root: a person's browser gets a page, not JSON.
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


class Echo:
    name = "echo"
    caller = Caller()

    @rpc
    def whoami(self):
        return [self.caller.user_id, list(self.caller.roles), self.caller.request_id]

    @rpc
    def fail(self):
        raise ValueError("bad")

    @rpc
    def slow(self):
        eventlet.sleep(3)


def test_rpc_carries_the_callers_context_per_call(container_factory, config):
    container_factory(Echo, config).start()
    service_rpc = ServiceRpc(config, timeout=5)
    alice = CallerContext(user_id="alice", roles=("centre_operator",), request_id="r-a")
    bob = CallerContext(user_id="bob", roles=("grid_worker",), request_id="r-b")
    assert service_rpc.call("echo", "whoami", caller=alice) == ["alice", ["centre_operator"], "r-a"]
    assert service_rpc.call("echo", "whoami", caller=bob) == ["bob", ["grid_worker"], "r-b"]


def test_rpc_proxy_survives_service_errors_and_is_recreated_after_transport_errors(
    container_factory, config
):
    container_factory(Echo, config).start()
    service_rpc = ServiceRpc(config, timeout=1)
    caller = CallerContext(user_id="u")
    service_rpc.call("echo", "whoami", caller=caller)
    first = service_rpc._local.standalone

    with pytest.raises(RemoteError, match="ValueError"):
        service_rpc.call("echo", "fail", caller=caller)
    assert service_rpc._local.standalone is first  # the service answered: proxy kept

    with pytest.raises(MethodNotFound):
        service_rpc.call("echo", "no_such_method", caller=caller)
    assert service_rpc._local.standalone is first

    with pytest.raises(RpcTimeout):
        service_rpc.call("echo", "slow", caller=caller)
    assert service_rpc._local.standalone is None  # discarded

    assert service_rpc.call("echo", "whoami", caller=caller)[0] == "u"
    assert service_rpc._local.standalone is not first  # a fresh proxy
