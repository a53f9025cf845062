"""A reply that cannot be sent because the broker went away while the worker ran does not
kill the service: nameko's own `rpc` entrypoint killed the container (and `nameko run`
exited), taking every other in-flight call of the replica with it. Found by the fault
suite's broker scenarios (tests/integration/faults/test_nothing_lost.py)."""

import eventlet
import pytest
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import wait_until
from gridwork_common.rpc import rpc

pytestmark = pytest.mark.integration


class Napper:
    name = "napper"

    @rpc
    def nap(self, seconds):
        eventlet.sleep(seconds)
        return "rested"


def test_a_reply_lost_with_the_broker_leaves_the_service_running(private_rabbitmq):
    config = {"AMQP_URI": private_rabbitmq.amqp_uri}
    container = ServiceContainer(Napper, config)
    container.start()
    try:
        with ClusterRpcProxy(config) as proxy:
            proxy.napper.nap.call_async(2)
            wait_until(lambda: container._worker_threads, 10, "the napping worker")
        private_rabbitmq.stop()  # the worker wakes to no broker: its reply cannot go
        try:
            wait_until(lambda: not container._worker_threads, 30, "the worker's end")
        finally:
            private_rabbitmq.start()
        assert not container._died.ready(), container._died.wait()
        with ClusterRpcProxy(config, timeout=60) as proxy:
            assert proxy.napper.nap(0) == "rested"
    finally:
        container.stop()
