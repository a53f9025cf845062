"""What deploy/k8s assumes of the running processes, checked on the whole stack as real
processes: every process answers the probes its manifests name, and every queue a KEDA
scaler watches is one the services really declared on the broker (asked of RabbitMQ's
management API)."""

from urllib.parse import urlparse

import pytest
import requests

from devstack.processes import wait_until
from tests.conftest import drop_databases, settings_env
from tests.kubernetes import OVERLAYS, render, scaler_queue_names
from tests.stack import SERVICES, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(request, infra, vhost_pipeline, tmp_path_factory):
    """One stack for this module, in a vhost of its own (nameko's `rabbit_config` is per
    test)."""
    broker = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost:
        env = settings_env(infra, f"{broker.scheme}://{broker.netloc}/{vhost}")
        try:
            with running_stack(env, tmp_path_factory.mktemp("stack")) as running:
                yield {**running, "vhost": vhost}
        finally:
            drop_databases(infra["mongo_uri"], env["MONGO_DB_PREFIX"])


@pytest.mark.parametrize(
    "process", ["population", "events", "media", "media-describer", "assessment", "webhooks"]
)
def test_each_process_answers_the_probes_its_manifest_names(stack, process):
    port = stack["metrics"][process]
    live = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert (live.status_code, live.json()["status"]) == (200, "up")
    ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert (ready.status_code, ready.json()["status"]) == (200, "up"), ready.text
    assert (
        "process_cpu_seconds_total"
        in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    )


def test_every_queue_a_scaler_watches_exists_on_the_broker(stack, rabbit_manager):
    watched = {q for queues in scaler_queue_names(render(OVERLAYS[0])).values() for q in queues}
    # Each service scales on its RPC queue at least (and on its event queues).
    assert {f"rpc-{service}" for service in SERVICES} <= watched

    def declared() -> set[str]:
        return {queue["name"] for queue in rabbit_manager.get_queues(stack["vhost"])}

    # The services declare their queues as they start; /readyz answered, so they have.
    wait_until(lambda: watched <= declared(), 10, "the scalers' queues on the broker")
    assert sorted(watched - declared()) == []
